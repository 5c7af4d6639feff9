// The HVP step's own costs: --select-res renders only the first view group again (DINO's local crops
// once), iBOT refuses --select-res at validation, and what the step uploads and gathers.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Rng, type Engine } from '../engine/index.js';
import { BatchLoader } from '../hvp/data/index.js';
import { createMethod } from '../hvp/methods/index.js';
import { hvpStep } from '../hvp/train/hvp-step.js';
import type { TrainConfig } from '../hvp/train/config.js';
import type { Method } from '../hvp/methods/method.js';
import { gatherSelected } from '../hvp/select/index.js';
import { groupColumns } from '../hvp/train/hvp-step.js';
import { pretrain } from '../hvp/train/loop.js';
import { readRunState, sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

/** A method for `c` and a runner of its HVP steps on the synthetic set's first batch. */
async function stepper(e: Engine, c: TrainConfig): Promise<{ method: Method; run: (step: number) => Promise<void> }> {
  const ds = syntheticDataset(1, 16, 16);
  const method = createMethod({ engine: e, config: c, channels: 1, stepsPerEpoch: 2, totalSteps: 4, rng: new Rng(c.seed) });
  const loader = new BatchLoader(ds, { batchSize: c.batchSize, shuffle: false });
  const batch = (await loader.epochBatches(0)[Symbol.asyncIterator]().next()).value!;
  const run = (step: number) =>
    e.scopeAsync(async () => {
      await hvpStep({ engine: e, method, config: c, mean: ds.mean, std: ds.std }, batch, { step, epoch: 0, totalSteps: 4 });
    });
  return { method, run };
}

/** Dispatch names of one HVP step of `c`. */
async function stepDispatches(e: Engine, c: TrainConfig): Promise<string[]> {
  const { run } = await stepper(e, c);
  const spy = vi.spyOn(e.backend, 'dispatch');
  try {
    await run(0);
    return spy.mock.calls.map(([a]) => a.kernel.name);
  } finally {
    spy.mockRestore();
  }
}

/** The i32 uploads of `fn`, as arrays. */
async function i32Uploads(e: Engine, fn: () => Promise<void>): Promise<number[][]> {
  const spy = vi.spyOn(e.backend, 'write');
  try {
    await fn();
    return spy.mock.calls.filter(([, , d]) => d instanceof Int32Array).map(([, , d]) => [...(d as Int32Array)]);
  } finally {
    spy.mockRestore();
  }
}

/** Every block of adjacent columns of `rows`, flattened row-major, with its first column's values shifted to start anywhere. */
function looksLikeTable(upload: number[], rows: number[][]): boolean {
  const n = rows[0].length;
  for (let from = 0; from < n; from++) {
    for (let to = from + 1; to <= n; to++) {
      const block = rows.flatMap((r) => r.slice(from, to));
      if (block.length !== upload.length) continue;
      const shift = block[0] - upload[0];
      if (block.every((v, i) => v - shift === upload[i])) return true;
    }
  }
  return false;
}

const dino = (over: Partial<TrainConfig>) =>
  tiny({ method: 'dino', size: 12, localSize: 8, views: 4, localCrops: 2, localCropsUsed: 2, batchSize: 4, outDim: 16, ...over });

describe('--select-res', () => {
  it('renders only the global views again: DINO\'s local crops are rendered once', async () => {
    const e = await sharedEngine();
    const renders = async (c: TrainConfig) => (await stepDispatches(e, c)).filter((n) => n === 'render_views').length;
    const both = await renders(dino({}));
    const globalsOnly = await renders(dino({ localCrops: 0, localCropsUsed: 0 }));
    const atSelectRes = await renders(dino({ selectRes: 8 }));
    expect(globalsOnly).toBeGreaterThan(0);
    expect(both).toBeGreaterThan(globalsOnly);
    // One more rendering of the globals, none of the locals.
    expect(atSelectRes).toBe(both + globalsOnly);
  });

  it('iBOT refuses --select-res at validation, naming both sizes', () => {
    expect(() => tiny({ method: 'ibot', arch: 'vit_tiny', patchSize: 4, size: 12, selectRes: 8 })).toThrow(/--select-res \(8\).*iBOT.*--size \(12\)/);
  });
});

describe('the combination table', () => {
  it.each([
    ['SimSiam, 4 views', () => tiny({ method: 'simsiam', views: 4, batchSize: 4 })],
    ['DINO, 4 globals and 2 locals', () => dino({})],
  ])('%s: uploaded once per run, not again by any later step\'s scorer or gather', async (_, config) => {
    const e = await sharedEngine();
    const { method, run } = await stepper(e, config());
    const first = (await i32Uploads(e, () => run(0))).filter((u) => looksLikeTable(u, method.combinations));
    expect(first.length).toBeLessThanOrEqual(1);
    const later = (await i32Uploads(e, () => run(1))).filter((u) => looksLikeTable(u, method.combinations));
    expect(later).toEqual([]);
  });
});

describe('the gather of the training batch', () => {
  it('takes each view group\'s columns of the one table, as the per-group tables on the CPU would', async () => {
    const e = await sharedEngine();
    const { method } = await stepper(e, dino({}));
    const rows = method.combinations;
    expect(groupColumns(method, rows)).toEqual([{ columns: [0, 2], viewOffset: 0 }, { columns: [2, 4], viewOffset: 4 }]);
    const b = 3;
    const rng = new Rng(9);
    const choiceRows = Array.from({ length: b }, () => rng.int(rows.length));
    const locals = e.tensor(Float32Array.from({ length: 2 * b * 5 }, (_, i) => i), [2 * b, 5]);
    const choice = e.tensor(choiceRows, [b], { dtype: 'i32' });
    const got = await e.scope(() => gatherSelected(locals, choice, rows, { columns: [2, 4], viewOffset: 4 })).toArray();
    // Slot s of sample i: local view rows[choice[i]][2 + s] - 4 of that sample.
    const want = [0, 1].flatMap((s) => choiceRows.flatMap((r, i) => Array.from({ length: 5 }, (_, k) => ((rows[r][2 + s] - 4) * b + i) * 5 + k)));
    expect([...got]).toEqual(want);
    locals.dispose();
    choice.dispose();
  });
});

describe('--max-steps', () => {
  it.each(['simsiam', 'simclr', 'dino'] as const)('%s: the learning rate\'s cosine spans the run\'s --max-steps steps, not the epochs', async (method) => {
    const e = await sharedEngine();
    const over = method === 'dino' ? { outDim: 16, localCrops: 0, localCropsUsed: 0, views: 2, select: 'random' as const } : { views: 2, select: 'random' as const };
    // 48 images in batches of 8: 6 steps per epoch, 2 epochs = 12 steps; --max-steps 4 makes the run 4 steps.
    const c = tiny({ method, minLr: 0, warmupEpochs: 0, epochs: 2, maxSteps: 4, lr: 0.1, lrScaling: false, ...over });
    await pretrain(c, { engine: e, dataset: syntheticDataset(1), progress: false });
    const lrs = readFileSync(join(c.out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.lr !== undefined).map((l) => l.lr as number);
    const want = [0, 1, 2, 3].map((k) => 0.1 * 0.5 * (1 + Math.cos((Math.PI * k) / 4)));
    expect(lrs).toHaveLength(4);
    lrs.forEach((lr, k) => expect(lr).toBeCloseTo(want[k], 12));
  });
});

describe('logging a step', () => {
  it('engine.readAll reads several tensors (f32, i32, a strided view) in one readback, equal to toArray', async () => {
    const e = await sharedEngine();
    const a = e.tensor([1.5, -2, 3.25], [3]);
    const b = e.tensor([7, -1, 4, 9], [2, 2], { dtype: 'i32' });
    const c = e.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const ct = c.transpose(0, 1);
    const before = e.backend.counters.readbacks;
    const [ra, rb, rc] = await e.readAll([a, b, ct]);
    expect(e.backend.counters.readbacks - before).toBe(1);
    expect(rb).toBeInstanceOf(Int32Array);
    expect([[...ra], [...rb], [...rc]]).toEqual([[...(await a.toArray())], [...(await b.toArray())], [...(await ct.toArray())]]);
    for (const t of [a, b, c, ct]) t.dispose();
  });

  it('a logged step adds no GPU wait and no readback; its record is the one a timed (synchronised) step writes', async () => {
    const e = await sharedEngine();
    const run = async (over: Partial<TrainConfig>) => {
      const c = tiny({ method: 'simsiam', views: 3, maxSteps: 4, logSamples: 2, ...over });
      const sync = vi.spyOn(e.backend, 'sync');
      const readbacks = e.backend.counters.readbacks;
      try {
        await pretrain(c, { engine: e, dataset: syntheticDataset(1), progress: false });
        return { syncs: sync.mock.calls.length, readbacks: e.backend.counters.readbacks - readbacks, records: readRunState(c.out).log };
      } finally {
        sync.mockRestore();
      }
    };
    // Logged: steps 0 and 3 (the last) against every step; no phase times.
    const few = await run({ logEvery: 100, timeEvery: 0 });
    const all = await run({ logEvery: 1, timeEvery: 0 });
    expect(few.records.map((r) => r.step)).toEqual([0, 3]);
    expect(all.records.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    expect(all.syncs).toBe(few.syncs);
    expect(all.readbacks).toBe(few.readbacks);
    // Every step timed (a GPU wait after each phase): the same records.
    const timed = await run({ logEvery: 1, timeEvery: 1 });
    expect(timed.syncs).toBeGreaterThan(all.syncs);
    expect(all.records).toEqual(timed.records);
  });
});
