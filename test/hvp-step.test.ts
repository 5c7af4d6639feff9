// The HVP step's own costs: --select-res renders only the first view group again (DINO's local crops
// once), iBOT refuses --select-res at validation, and what the step uploads and gathers.

import { describe, expect, it, vi } from 'vitest';
import { Rng, type Engine } from '../engine/index.js';
import { BatchLoader } from '../hvp/data/index.js';
import { createMethod } from '../hvp/methods/index.js';
import { hvpStep } from '../hvp/train/hvp-step.js';
import type { TrainConfig } from '../hvp/train/config.js';
import { sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

/** Dispatch names of one HVP step of `c` (first batch of the synthetic set). */
async function stepDispatches(e: Engine, c: TrainConfig): Promise<string[]> {
  const ds = syntheticDataset(1, 16, 16);
  const method = createMethod({ engine: e, config: c, channels: 1, stepsPerEpoch: 2, totalSteps: 4, rng: new Rng(c.seed) });
  const loader = new BatchLoader(ds, { batchSize: c.batchSize, shuffle: false });
  const batch = (await loader.epochBatches(0)[Symbol.asyncIterator]().next()).value!;
  const spy = vi.spyOn(e.backend, 'dispatch');
  try {
    await e.scopeAsync(async () => {
      await hvpStep({ engine: e, method, config: c, mean: ds.mean, std: ds.std }, batch, { step: 0, epoch: 0, totalSteps: 4 });
    });
    return spy.mock.calls.map(([a]) => a.kernel.name);
  } finally {
    spy.mockRestore();
  }
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
