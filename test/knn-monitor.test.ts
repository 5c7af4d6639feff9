// The k-NN monitor: it leaves training untouched (a run with it on and off ends with the same bytes
// in every tensor and the same step records), its figure at a step is what evaluation computes on
// that step's checkpoint with the same bank and queries, and a resumed run continues the same curve.

import { describe, expect, it } from 'vitest';
import { loadBackbone } from '../hvp/eval/backbone.js';
import { extractFeatures, knnClassify } from '../hvp/eval/index.js';
import { disposeRows } from '../hvp/eval/rows.js';
import { pretrain } from '../hvp/train/loop.js';
import { differingTensors, readRunState, runDir, sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

const knnRecords = (log: Record<string, unknown>[]) => log.filter((r) => r.event === 'knn');
const stepRecords = (log: Record<string, unknown>[]) => log.filter((r) => r.event === undefined);

describe('k-NN monitor', () => {
  it('does not change training: identical weights, optimizer state and step records with it on and off', async () => {
    const engine = await sharedEngine();
    const base = tiny({ method: 'simsiam', views: 3, trainLimit: 24, epochs: 1, knnBank: 24, knnQueries: 24 });
    const off = { ...base, out: runDir(), knnEvery: 0 };
    const on = { ...base, out: runDir(), knnEvery: 2 };
    await pretrain(off, { engine, dataset: syntheticDataset(1), progress: false });
    await pretrain(on, { engine, dataset: syntheticDataset(1), progress: false, knnSets: { bank: syntheticDataset(1), queries: syntheticDataset(1) } });
    const a = readRunState(off.out);
    const b = readRunState(on.out);
    expect(differingTensors(a, b)).toEqual([]);
    expect(b.optimizer).toBe(a.optimizer);
    expect(stepRecords(b.log)).toEqual(stepRecords(a.log));
    expect(knnRecords(a.log)).toEqual([]);
    // 24 images of batch 8: 3 steps; points at 0, 2 and after the last step.
    expect(knnRecords(b.log).map((r) => r.step)).toEqual([0, 2, 3]);
  });

  it('equals evaluation of the checkpoint at that step, and a resumed run continues the same curve', async () => {
    const engine = await sharedEngine();
    const base = tiny({ method: 'simsiam', views: 3, trainLimit: 24, epochs: 1, knnEvery: 2, knnBank: 40, knnQueries: 48 });
    const sets = () => ({ bank: syntheticDataset(1), queries: syntheticDataset(1, 48) });
    const full = { ...base, out: runDir() };
    await pretrain(full, { engine, dataset: syntheticDataset(1), progress: false, knnSets: sets() });

    const part = { ...base, out: runDir() };
    await pretrain(part, { engine, dataset: syntheticDataset(1), progress: false, knnSets: sets(), stopAfter: 2 });
    // The checkpoint of step 2, evaluated as `hvp eval knn` does: its backbone, both splits normalised by the train data's statistics.
    const atStop = readRunState(part.out);
    expect(atStop.step).toBe(2);
    const loaded = await loadBackbone(engine, { checkpoint: `${part.out}/checkpoint.safetensors` });
    const train = syntheticDataset(1);
    const bank = sets().bank;
    const queries = sets().queries;
    const stats = { mean: train.mean, std: train.std };
    const top1 = await engine.scopeAsync(async () => {
      const bankF = await extractFeatures(engine, loaded.backbone, { ...bank, length: 40, name: 'bank' }, { normalize: stats });
      const queryF = await extractFeatures(engine, loaded.backbone, queries, { normalize: stats });
      const labels = (n: number) => Int32Array.from({ length: n }, (_, i) => i % 3);
      const r = await knnClassify(engine, { features: bankF, labels: labels(40) }, { features: queryF, labels: labels(48) }, { k: 20, temperature: 0.07, numClasses: 3 });
      disposeRows(bankF);
      disposeRows(queryF);
      return r.top1;
    });
    const monitored = knnRecords(atStop.log).find((r) => r.step === 2)!;
    expect(monitored.top1).toBe(top1);
    expect([monitored.bank, monitored.queries]).toEqual([40, 48]);

    await pretrain({ ...part, resume: true }, { engine, dataset: syntheticDataset(1), progress: false, knnSets: sets() });
    const want = readRunState(full.out);
    const got = readRunState(part.out);
    expect(differingTensors(got, want)).toEqual([]);
    expect(knnRecords(got.log)).toEqual(knnRecords(want.log));
    expect(knnRecords(want.log).map((r) => r.step)).toEqual([0, 2, 3]);
  });
});
