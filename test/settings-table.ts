// The table of `hvp pretrain` settings for test/settings.test.ts and test/settings-methods.test.ts: a row per
// DEFAULTS key changes that setting and checks that something observable changes (the weights, the
// optimizer's state tensors, the images drawn, the lr or selections in the log, the files written).
// Two files run its rows, each in its own worker, so the two halves run side by side. Every run's
// method is disposed once observed: one engine runs them all.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig, type TrainConfig } from '../hvp/train/config.js';
import { CHECKPOINT, pretrain } from '../hvp/train/loop.js';
import { disposeMethod } from '../hvp/methods/method.js';
import { differingTensors, readRunState, runDir, sharedEngine, syntheticDataset, tiny, type RunState } from './train-helpers.js';

export type Key = keyof TrainConfig;
interface Observed {
  state: RunState;
  reads: number[];
  config: TrainConfig;
}
interface Row {
  key: Key;
  value: unknown;
  /** Settings of both runs besides the method's base (e.g. a schedule long enough to see). */
  base?: Partial<TrainConfig>;
  /** What must differ; by default, anything of the run's state (weights, optimizer state, log). */
  check?: (before: Observed, after: Observed) => void;
}

// 16 images of batch 8: two steps per epoch, one epoch.
const short = { trainLimit: 16, epochs: 1, maxSteps: 0 } satisfies Partial<TrainConfig>;
const BASES: Record<string, Partial<TrainConfig>> = {
  simsiam: { method: 'simsiam', views: 4, ...short },
  simclr: { method: 'simclr', views: 4, ...short },
  dino: { method: 'dino', views: 4, optimizer: 'adamw', localCrops: 2, localCropsUsed: 2, localSize: 8, ...short, batchSize: 4, trainLimit: 8 },
  vit: { method: 'dino', arch: 'vit_tiny', patchSize: 4, size: 8, views: 2, select: 'random', batchSize: 4, optimizer: 'adamw', localCrops: 0, trainLimit: 8, epochs: 1 },
  ibot: { method: 'ibot', arch: 'vit_tiny', patchSize: 4, size: 8, views: 2, batchSize: 4, optimizer: 'adamw', localCrops: 1, localCropsUsed: 1, localSize: 4, trainLimit: 8, epochs: 1 },
};

const lrs = (o: Observed) => o.state.log.map((l) => l.lr);
const loggedSteps = (o: Observed) => o.state.log.map((l) => l.step);
/** Steps whose record holds phase times (readRunState leaves times out: read the log itself). */
const timedSteps = (o: Observed) =>
  readFileSync(join(o.config.out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.times_ms).map((l) => l.step);
const selected = (o: Observed) => o.state.log.map((l) => l.selected);
/** Distinct combinations chosen at step 0 (with `limit 1`, all samples share the one drawn). */
const distinct = (o: Observed) => new Set((o.state.log[0].selected as number[][]).map((p) => p.join(','))).size;
const bufferNames = (o: Observed) => [...new Set([...o.state.tensors.keys()].filter((n) => n.startsWith('optimizer.')).map((n) => n.split('.').pop()))].sort();

export const TABLE: Record<string, Row[]> = {
  simsiam: [
    { key: 'method', value: 'simclr', check: (a, b) => expect([...b.state.tensors.keys()].some((n) => n.startsWith('predictor.'))).not.toBe([...a.state.tensors.keys()].some((n) => n.startsWith('predictor.'))) },
    { key: 'arch', value: 'resnet34', check: (a, b) => expect(b.state.tensors.has('backbone.layer1.2.conv1.weight')).not.toBe(a.state.tensors.has('backbone.layer1.2.conv1.weight')) },
    { key: 'widths', value: [4, 4, 8, 16], check: (a, b) => expect(b.state.tensors.get('backbone.layer4.0.conv1.weight')!.length).toBe(2 * a.state.tensors.get('backbone.layer4.0.conv1.weight')!.length) },
    { key: 'smallImage', value: false, check: (a, b) => expect(b.state.tensors.get('backbone.conv1.weight')!.length).toBe((49 / 9) * a.state.tensors.get('backbone.conv1.weight')!.length) },
    { key: 'zeroInitResidual', value: true },
    {
      key: 'trainLimit',
      value: 24,
      check: (a, b) => {
        expect(a.state.step).toBe(2);
        expect(b.state.step).toBe(3);
        expect(Math.max(...a.reads)).toBeLessThan(16);
        expect(Math.max(...b.reads)).toBeLessThan(24);
        expect(Math.max(...b.reads)).toBeGreaterThanOrEqual(16);
      },
    },
    { key: 'epochs', value: 2, check: (a, b) => expect([a.state.step, b.state.step]).toEqual([2, 4]) },
    { key: 'maxSteps', value: 1, check: (a, b) => expect([a.state.step, b.state.step]).toEqual([2, 1]) },
    { key: 'batchSize', value: 4, check: (a, b) => expect([a.state.step, b.state.step]).toEqual([2, 4]) },
    { key: 'seed', value: 7 },
    { key: 'optimizer', value: 'adamw', check: (a, b) => expect([bufferNames(a), bufferNames(b)]).toEqual([['momentumBuffer'], ['expAvg', 'expAvgSq']]) },
    { key: 'larsEta', value: 0.01, base: { optimizer: 'lars' } },
    // Batch norm normalises over each micro-batch of 4 rather than the batch of 8.
    { key: 'gradAccumSteps', value: 2 },
    { key: 'lr', value: 0.1, check: (a, b) => expect(lrs(b)[0]).toBe(2 * (lrs(a)[0] as number)) },
    { key: 'lrScaling', value: false, base: { lr: 0.05 }, check: (a, b) => expect([lrs(a)[0], lrs(b)[0]]).toEqual([(0.05 * 8) / 256, 0.05]) },
    { key: 'minLr', value: 0.01, check: (a, b) => expect(lrs(b)[1]).not.toBe(lrs(a)[1]) },
    { key: 'warmupEpochs', value: 1, check: (a, b) => expect(lrs(b)[0]).toBe((lrs(a)[0] as number) / 2) },
    { key: 'momentum', value: 0.5 },
    { key: 'weightDecay', value: 0.1, base: { weightDecayEnd: 0.1 } },
    { key: 'weightDecayEnd', value: 0.5 },
    { key: 'clipGrad', value: 1e-4 },
    { key: 'fixPredLr', value: false, base: { lrScaling: false } },
    { key: 'size', value: 8 },
    { key: 'scaleMin', value: 0.9 },
    { key: 'scaleMax', value: 0.5 },
    { key: 'select', value: 'random', check: (a, b) => expect([a.state.log[0].score === null, b.state.log[0].score]).toEqual([false, null]) },
    { key: 'views', value: 3, check: (a, b) => expect(selected(b).flat(2).every((v) => (v as number) < 3)).not.toBe(selected(a).flat(2).every((v) => (v as number) < 3)) },
    { key: 'limit', value: 1, check: (a, b) => expect([distinct(a), distinct(b)]).toEqual([distinct(a), 1]) },
    { key: 'selectRes', value: 8, check: (a, b) => expect(b.state.log[0].score).not.toEqual(a.state.log[0].score) },
    { key: 'selectLayer', value: 'layer1', check: (a, b) => expect(b.state.log[0].score).not.toEqual(a.state.log[0].score) },
    { key: 'anchor', value: true, check: (a, b) => expect(selected(b).flat(1).every((p) => (p as number[])[0] === 0)).not.toBe(selected(a).flat(1).every((p) => (p as number[])[0] === 0)) },
    { key: 'dim', value: 8 },
    { key: 'predDim', value: 4 },
    { key: 'logEvery', value: 2, base: { epochs: 2 }, check: (a, b) => expect([loggedSteps(a), loggedSteps(b)]).toEqual([[0, 1, 2, 3], [0, 2, 3]]) },
    { key: 'timeEvery', value: 1, check: (a, b) => expect([timedSteps(a), timedSteps(b)]).toEqual([[0], [0, 1]]) },
    {
      key: 'logSamples',
      value: 1,
      check: (a, b) => expect([a, b].map((o) => (o.state.log[0].candidate_scores as number[][]).map((r) => r.length))).toEqual([[6, 6, 6, 6], [6]]),
    },
    { key: 'out', value: '', check: (_a, b) => expect(existsSync(join(b.config.out, CHECKPOINT))).toBe(true) },
  ],
  simclr: [{ key: 'temperature', value: 0.5 }],
  dino: [
    // LARS and SGD keep the same state (a momentum buffer); the trust ratio changes the weights.
    { key: 'optimizer', value: 'lars', base: { optimizer: 'sgd' } },
    { key: 'optimizer', value: 'sgd', check: (a, b) => expect([bufferNames(a), bufferNames(b)]).toEqual([['expAvg', 'expAvgSq'], ['momentumBuffer']]) },
    { key: 'localSize', value: 6 },
    { key: 'localScaleMin', value: 0.3 },
    { key: 'localScaleMax', value: 0.2, base: { localScaleMin: 0.1 } },
    { key: 'localCrops', value: 3 },
    { key: 'localCropsUsed', value: 1 },
    { key: 'outDim', value: 16 },
    { key: 'teacherTemp', value: 0.07 },
    { key: 'warmupTeacherTemp', value: 0.02, base: { warmupTeacherTempEpochs: 1 } },
    { key: 'warmupTeacherTempEpochs', value: 1, base: { warmupTeacherTemp: 0.02 } },
    { key: 'studentTemp', value: 0.2 },
    { key: 'momentumTeacher', value: 0.5, check: (a, b) => expect(differingTensors(a.state, b.state).some((n) => n.startsWith('teacher.'))).toBe(true) },
    { key: 'freezeLastLayer', value: 0, check: (a, b) => expect(differingTensors(a.state, b.state)).toContain('head.last_layer.weight_v') },
    { key: 'normLastLayer', value: false },
  ],
  vit: [
    { key: 'patchSize', value: 8, check: (a, b) => expect(b.state.tensors.get('backbone.patch_embed.proj.weight')!.length).toBe(4 * a.state.tensors.get('backbone.patch_embed.proj.weight')!.length) },
    { key: 'dropPathRate', value: 0.5 },
  ],
  ibot: [
    { key: 'lambda1', value: 0.5 },
    { key: 'lambda2', value: 0.5 },
  ],
};

/**
 * Settings observed elsewhere: opening the data (below), resuming and saving (test/resume*.test.ts),
 * the k-NN monitor (test/knn-monitor.test.ts) and data-parallel runs under mpirun (test/distributed.test.ts).
 */
export const ELSEWHERE: Key[] = ['dataset', 'data', 'loadSize', 'resume', 'saveEvery', 'knnEvery', 'knnBank', 'knnQueries', 'allowSharedDevice', 'syncBn'];

async function observe(config: TrainConfig): Promise<Observed> {
  const dataset = syntheticDataset(config.arch.startsWith('vit') || config.method === 'dino' ? 3 : 1);
  disposeMethod((await pretrain(config, { engine: await sharedEngine(), dataset, progress: false })).method);
  return { state: readRunState(config.out), reads: dataset.reads, config };
}

/** Tests of the table's rows for the method bases named (keys of BASES), each run observed once. */
export function describeRows(bases: string[]): void {
  describe('every setting takes effect', () => {
    const cache = new Map<string, Promise<Observed>>();
    const run = (c: TrainConfig) => {
      const key = JSON.stringify({ ...c, out: '' });
      if (!cache.has(key)) cache.set(key, observe(c));
      return cache.get(key)!;
    };

    for (const base of bases) {
      for (const row of TABLE[base]) {
        it(`${row.key} (${base})`, async () => {
          const before = tiny({ ...BASES[base], ...row.base });
          const after = validateConfig({ ...before, [row.key]: row.value, out: runDir() });
          expect(after[row.key]).not.toEqual(before[row.key]);
          const [a, b] = [await run(before), await run(after)];
          if (row.check) row.check(a, b);
          else {
            const changed = differingTensors(a.state, b.state).length > 0 || JSON.stringify(a.state.log) !== JSON.stringify(b.state.log);
            expect(changed).toBe(true);
          }
        });
      }
    }
  });
}
