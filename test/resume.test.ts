// Resume is bit for bit: for each method, a run stopped and resumed (mid-epoch, then across an epoch
// boundary, then mid-epoch again) ends with exactly the bytes of the uninterrupted run in every
// weight, buffer and optimizer state tensor (DINO's teacher, centre, AdamW moments and its last layer
// frozen through epoch 0; iBOT's patch centre and per-step masks), the same optimizer step counts and
// hyper-parameters, and the same log.

import { describe, expect, it } from 'vitest';
import type { TrainConfig } from '../hvp/train/config.js';
import { pretrain } from '../hvp/train/loop.js';
import { StopRequest } from '../hvp/train/stop.js';
import type { Method } from '../hvp/methods/method.js';
import { differingTensors, readRunState, runDir, sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

// 16 images of batch 8 (8 of batch 4 for DINO and iBOT): 2 steps per epoch, 2 epochs, every step logged.
const CASES: { name: string; config: Partial<TrainConfig>; channels: number; holds: RegExp[] }[] = [
  { name: 'simsiam', config: { method: 'simsiam', views: 3 }, channels: 1, holds: [/^optimizer\.\d+\.momentumBuffer$/, /running_mean$/] },
  { name: 'simclr', config: { method: 'simclr', views: 3, anchor: true }, channels: 1, holds: [/^optimizer\.\d+\.momentumBuffer$/] },
  {
    name: 'dino',
    config: { method: 'dino', optimizer: 'adamw', views: 4, localCrops: 2, localCropsUsed: 1, localSize: 8, freezeLastLayer: 1, clipGrad: 3, batchSize: 4, trainLimit: 8 },
    channels: 3,
    holds: [/^teacher\.head\.last_layer\.weight_v$/, /^dino_loss\.center$/, /^optimizer\.\d+\.expAvgSq$/, /^head\.last_layer\.weight_v$/],
  },
  {
    name: 'ibot',
    config: { method: 'ibot', arch: 'vit_tiny', patchSize: 4, size: 8, batchSize: 4, trainLimit: 8, optimizer: 'adamw', views: 4, localCrops: 1, localCropsUsed: 1, localSize: 4 },
    channels: 3,
    holds: [/^ibot_loss\.center2$/, /^teacher\.backbone\.blocks\.0\.attn\.qkv\.weight$/, /^optimizer\.\d+\.expAvg$/],
  },
];

describe('resume is bit for bit', () => {
  for (const { name, config, channels, holds } of CASES) {
    it(`${name}: stopped after step 1 and 3 of 4, resumed twice, equals the uninterrupted run exactly`, async () => {
      const engine = await sharedEngine();
      const base = tiny({ trainLimit: 16, epochs: 2, maxSteps: 0, ...config });
      const full = { ...base, out: runDir() };
      await pretrain(full, { engine, dataset: syntheticDataset(channels), progress: false });

      const part = { ...base, out: runDir() };
      const a = await pretrain(part, { engine, dataset: syntheticDataset(channels), progress: false, stopAfter: 1 });
      expect([a.steps, a.interrupted]).toEqual([1, true]);
      // From step 1: the rest of epoch 0, the epoch boundary (a checkpoint), the first step of epoch 1.
      const b = await pretrain({ ...part, resume: true }, { engine, dataset: syntheticDataset(channels), progress: false, stopAfter: 2 });
      expect([b.steps, b.interrupted]).toEqual([2, true]);
      expect(readRunState(part.out).step).toBe(3);
      const c = await pretrain({ ...part, resume: true }, { engine, dataset: syntheticDataset(channels), progress: false });
      expect([c.steps, c.interrupted]).toEqual([1, false]);

      const want = readRunState(full.out);
      const got = readRunState(part.out);
      for (const re of holds) expect([...want.tensors.keys()].some((n) => re.test(n)), `a tensor matching ${re}`).toBe(true);
      expect(got.step).toBe(4);
      expect([...got.tensors.keys()].sort()).toEqual([...want.tensors.keys()].sort());
      expect(differingTensors(got, want)).toEqual([]);
      expect(got.optimizer).toBe(want.optimizer);
      expect(got.log).toEqual(want.log);
      expect(got.log.map((l) => l.step)).toEqual([0, 1, 2, 3]);
    });
  }
});

describe('stopping and --save-every', () => {
  // 32 images of batch 8: 4 steps per epoch, 2 epochs.
  const base = () => tiny({ method: 'simsiam', views: 3, trainLimit: 32, epochs: 2, maxSteps: 0 });

  it('a stop request (SIGTERM) after step 2 checkpoints step 3 and reports the signal; the resume is bit for bit', async () => {
    const engine = await sharedEngine();
    const cfg = base();
    const full = { ...cfg, out: runDir() };
    await pretrain(full, { engine, dataset: syntheticDataset(1), progress: false });

    const part = { ...cfg, out: runDir() };
    const stopRequest = new StopRequest();
    // The request arrives while step 2 trains; the loop finishes that step, saves and stops.
    const wrapMethod = (m: Method): Method => ({
      ...m,
      trainStep: (v, ctx, g) => {
        if (ctx.step === 2) stopRequest.request('SIGTERM');
        return m.trainStep(v, ctx, g);
      },
    });
    const a = await pretrain(part, { engine, dataset: syntheticDataset(1), progress: false, stopRequest, wrapMethod });
    expect([a.steps, a.step, a.interrupted, a.signal]).toEqual([3, 3, true, 'SIGTERM']);
    expect(readRunState(part.out).step).toBe(3);
    const b = await pretrain({ ...part, resume: true }, { engine, dataset: syntheticDataset(1), progress: false });
    expect([b.steps, b.interrupted, b.signal]).toEqual([5, false, null]);
    const want = readRunState(full.out);
    const got = readRunState(part.out);
    expect(differingTensors(got, want)).toEqual([]);
    expect(got.optimizer).toBe(want.optimizer);
    expect(got.log).toEqual(want.log);
  });

  it('--save-every 3 leaves the checkpoint of step 3 (mid-epoch) when step 4 crashes; resuming from it is bit for bit', async () => {
    const engine = await sharedEngine();
    const cfg = { ...base(), saveEvery: 3 };
    const full = { ...cfg, out: runDir() };
    await pretrain(full, { engine, dataset: syntheticDataset(1), progress: false });

    const part = { ...cfg, out: runDir() };
    const crash = (m: Method): Method => ({
      ...m,
      trainStep: (v, ctx, g) => {
        if (ctx.step === 3) throw new Error('injected crash');
        return m.trainStep(v, ctx, g);
      },
    });
    await expect(pretrain(part, { engine, dataset: syntheticDataset(1), progress: false, wrapMethod: crash })).rejects.toThrow('injected crash');
    expect(readRunState(part.out).step).toBe(3);
    const b = await pretrain({ ...part, resume: true }, { engine, dataset: syntheticDataset(1), progress: false });
    expect(b.steps).toBe(5);
    const want = readRunState(full.out);
    const got = readRunState(part.out);
    expect(differingTensors(got, want)).toEqual([]);
    expect(got.optimizer).toBe(want.optimizer);
    expect(got.log).toEqual(want.log);
  });
});
