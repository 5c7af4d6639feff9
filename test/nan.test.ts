// A diverged run stops naming the step and leaves the last good checkpoint byte for byte: for a
// NaN loss, and for NaN or infinite selection scores (also a −∞ that `hardest` would never choose,
// so the chosen scores alone would not show it). The faults are injected at step 3, after the
// checkpoint of epoch 0 (step 2) exists.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ops, type Tensor } from '../engine/index.js';
import type { Method } from '../hvp/methods/method.js';
import { CHECKPOINT, pretrain } from '../hvp/train/loop.js';
import { readCheckpointMeta } from '../models/checkpoint.js';
import { sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

const FAULT_STEP = 3;

/** `m` with `fault` applied to its scores or its loss at FAULT_STEP; the checkpoint's bytes as the fault fires. */
function faulty(m: Method, where: 'score' | 'loss', fault: (t: Tensor) => Tensor, path: string, seen: { bytes?: Buffer }): Method {
  return {
    ...m,
    score(views, rows, ctx) {
      const s = m.score(views, rows, ctx);
      return where === 'score' && ctx.step === FAULT_STEP ? fault(s) : s;
    },
    async trainStep(views, ctx, gather) {
      if (ctx.step === FAULT_STEP) seen.bytes = readFileSync(path);
      const l = await m.trainStep(views, ctx, gather);
      return where === 'loss' && ctx.step === FAULT_STEP ? fault(l) : l;
    },
  };
}

/** Adds `value` at one entry ([0, 0]) of the scores (for a NaN: to every entry times 0, then one NaN). */
const atOneEntry = (value: number) => (s: Tensor) => {
  const data = new Float32Array(s.size);
  data[0] = value;
  return ops.add(s, s.engine.tensor(data, s.shape));
};

const CASES: { name: string; where: 'score' | 'loss'; fault: (t: Tensor) => Tensor; message: RegExp }[] = [
  { name: 'NaN loss', where: 'loss', fault: (l) => ops.mul(l, l.engine.tensor([NaN], [])), message: /loss became NaN at step 3 \(epoch 1\)/ },
  { name: 'NaN score', where: 'score', fault: atOneEntry(NaN), message: /selection score became NaN \(NaN or infinite\) at step 3 \(epoch 1\)/ },
  { name: '+∞ score', where: 'score', fault: atOneEntry(Infinity), message: /selection score became (Infinity|NaN) .* at step 3/ },
  { name: '−∞ score under hardest', where: 'score', fault: atOneEntry(-Infinity), message: /selection score became (-Infinity|NaN) .* at step 3/ },
];

describe('divergence with a checkpoint present', () => {
  for (const { name, where, fault, message } of CASES) {
    it(`${name}: stops naming the step; the checkpoint is the last good one, bytes unchanged`, async () => {
      // 2 steps per epoch: the checkpoint of epoch 0 is written at step 2, the fault comes at step 3.
      const c = tiny({ method: 'simsiam', views: 3, select: 'hardest', trainLimit: 16, epochs: 3 });
      const path = join(c.out, CHECKPOINT);
      const seen: { bytes?: Buffer } = {};
      const run = pretrain(c, { engine: await sharedEngine(), dataset: syntheticDataset(1), progress: false, wrapMethod: (m) => faulty(m, where, fault, path, seen) });
      await expect(run).rejects.toThrow(message);
      await expect(run).rejects.toThrow(`The last good checkpoint is ${path}`);
      expect(seen.bytes).toBeDefined();
      expect(readFileSync(path).equals(seen.bytes!)).toBe(true);
      expect((await readCheckpointMeta(path)).step).toBe(2);
    });
  }
});
