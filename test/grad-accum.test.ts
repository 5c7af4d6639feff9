// Gradient accumulation (--grad-accum-steps K): a step on K micro-batches of B/K images equals a step
// on the full batch of B up to float reduction order where nothing in the forward couples the samples
// of a batch: DINO on a ViT (layer norm only, no batch norm in the head) with SGD, including the HVP
// selection (per-sample scores), the centre (moved once per step by the full batch's mean) and the
// teacher's EMA. Where batch norm normalises over the micro-batch (SimSiam on a ResNet) the
// result differs, as in the reference code; that difference is checked to be real, so the tolerance
// above is tight enough to see it. A run with micro-batches (and LARS) resumes bit for bit.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { io } from '../engine/index.js';
import { validateConfig, type TrainConfig } from '../hvp/train/config.js';
import { CHECKPOINT, pretrain } from '../hvp/train/loop.js';
import { differingTensors, readRunState, runDir, sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

/** Every float tensor of a run's checkpoint. */
function floats(out: string): Map<string, Float32Array> {
  const { tensors } = io.readSafetensors(readFileSync(join(out, CHECKPOINT)));
  return new Map([...tensors].filter(([, t]) => t.data instanceof Float32Array).map(([n, t]) => [n, t.data as Float32Array]));
}

/** The largest |a − b| / (atol + rtol·|b|) over every tensor (≤ 1 means within tolerance), and where. */
function worst(a: Map<string, Float32Array>, b: Map<string, Float32Array>, atol: number, rtol: number): { ratio: number; name: string } {
  let out = { ratio: 0, name: '' };
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) {
      const r = Math.abs(x[i] - y[i]) / (atol + rtol * Math.abs(y[i]));
      if (!(r <= out.ratio)) out = { ratio: r, name };
    }
  }
  return out;
}

// 8 images in batches of 4: 2 steps per epoch; 2 steps in all.
const DINO: Partial<TrainConfig> = {
  method: 'dino',
  arch: 'vit_tiny',
  patchSize: 4,
  size: 8,
  optimizer: 'sgd',
  lr: 0.5,
  lrScaling: false,
  views: 4,
  localCrops: 2,
  localCropsUsed: 1,
  localSize: 4,
  batchSize: 4,
  trainLimit: 8,
  epochs: 1,
  maxSteps: 2,
  dropPathRate: 0,
};
const TOL = { atol: 1e-5, rtol: 1e-3 };

async function run(config: TrainConfig, stopAfter?: number) {
  const engine = await sharedEngine();
  return pretrain(config, { engine, dataset: syntheticDataset(3), progress: false, stopAfter });
}

describe('--grad-accum-steps', () => {
  {
    it('DINO on a ViT with SGD: 2 micro-batches of 2 equal one batch of 4 in every weight, buffer and optimizer state', async () => {
      const base = tiny(DINO);
      const one = { ...base, out: runDir() };
      const two = { ...base, gradAccumSteps: 2, out: runDir() };
      await run(one);
      await run(two);
      const a = readRunState(one.out);
      const b = readRunState(two.out);
      // The same samples, views, selections (per-sample scores) and learning rates, and a close loss.
      const strip = (l: Record<string, unknown>[]) => l.filter((r) => r.step !== undefined && !r.event).map(({ loss: _l, score: _s, score_all_mean: _m, candidate_scores: _c, ...r }) => r);
      expect(strip(b.log)).toEqual(strip(a.log));
      b.log.forEach((r, i) => expect(r.loss as number).toBeCloseTo(a.log[i].loss as number, 4));
      const w = worst(floats(two.out), floats(one.out), TOL.atol, TOL.rtol);
      expect(w.ratio, `worst tensor ${w.name}`).toBeLessThanOrEqual(1);
      // Not bit-equal: the sums ran in another order, so the comparison above is the one to make.
      expect(differingTensors(a, b).length).toBeGreaterThan(0);
    });
  }

  it('SimSiam on a ResNet differs (batch norm normalises over each micro-batch), beyond the tolerance above', async () => {
    const base = tiny({ method: 'simsiam', views: 3, batchSize: 8, trainLimit: 16, epochs: 1, maxSteps: 2 });
    const one = { ...base, out: runDir() };
    const two = { ...base, gradAccumSteps: 2, out: runDir() };
    const engine = await sharedEngine();
    await pretrain(one, { engine, dataset: syntheticDataset(1), progress: false });
    await pretrain(two, { engine, dataset: syntheticDataset(1), progress: false });
    expect(worst(floats(two.out), floats(one.out), TOL.atol, TOL.rtol).ratio).toBeGreaterThan(10);
  });

  it('a run on micro-batches with LARS stopped after step 1 resumes bit for bit', async () => {
    const cfg = tiny({ method: 'simsiam', views: 3, optimizer: 'lars', gradAccumSteps: 2, trainLimit: 24, epochs: 1 });
    const engine = await sharedEngine();
    const go = (c: TrainConfig, stopAfter?: number) => pretrain(c, { engine, dataset: syntheticDataset(1), progress: false, stopAfter });
    const full = { ...cfg, out: runDir() };
    await go(full);
    const part = { ...cfg, out: runDir() };
    expect((await go(part, 1)).steps).toBe(1);
    expect((await go({ ...part, resume: true })).steps).toBe(2);
    const want = readRunState(full.out);
    const got = readRunState(part.out);
    expect(differingTensors(got, want)).toEqual([]);
    expect(got.optimizer).toBe(want.optimizer);
    expect(got.log).toEqual(want.log);
  });

  it('rejects a batch not divisible by K, micro-batches of one image and iBOT, naming the values', () => {
    expect(() => tiny({ batchSize: 10, gradAccumSteps: 4 })).toThrow(/--batch-size \(10\) must be divisible by --grad-accum-steps \(4\)/);
    expect(() => tiny({ batchSize: 8, gradAccumSteps: 8 })).toThrow(/--batch-size \/ --grad-accum-steps is 1 images per micro-batch/);
    expect(() => tiny({ batchSize: 8, gradAccumSteps: 0 })).toThrow(/--grad-accum-steps must be a positive integer, got 0/);
    expect(() => tiny({ method: 'ibot', arch: 'vit_tiny', size: 8, optimizer: 'adamw', gradAccumSteps: 2 })).toThrow(/not supported for ibot/);
    expect(() => validateConfig({ ...tiny({}), optimizer: 'lamb' as never })).toThrow(/--optimizer must be sgd, adamw or lars, got 'lamb'/);
  });
});
