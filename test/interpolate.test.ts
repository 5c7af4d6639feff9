// Bicubic resize against a float64 reference (PyTorch's formula: Keys' cubic with A = −0.75, taps
// clamped at the border, source coordinate (o + 0.5)·ratio − 0.5) on random inputs, up- and
// downsampling, strided inputs, the scale_factor mapping; its backward against finite differences;
// and both against PyTorch's own F.interpolate (fixture from scripts/fixtures/vit_fixture.py).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { engine, expectClose, fromGpu, gradcheck, randNd, toGpu } from './helpers.js';
import { Nd } from './ref.js';
import { bicubicRef } from './interpolate-ref.js';

// ---------------------------------------------------------------- float64 reference

async function run(e: Engine, fn: () => Tensor): Promise<Nd> {
  return e.scopeAsync(async () => fromGpu(fn()));
}

// ---------------------------------------------------------------- tests

describe('interpolateBicubic', async () => {
  const e = await engine();
  const rng = new Rng(5);

  const cases: { name: string; shape: number[]; out: [number, number]; scale?: [number, number] }[] = [
    { name: 'upsample, non-square, more than one workgroup', shape: [2, 3, 5, 7], out: [9, 13] },
    { name: 'downsample by more than 4 (taps farther apart than the kernel)', shape: [1, 2, 23, 17], out: [4, 3] },
    { name: 'same size (identity)', shape: [1, 2, 4, 3], out: [4, 3] },
    { name: 'a 1-pixel axis (every tap clamps onto it)', shape: [2, 1, 1, 6], out: [3, 4] },
    { name: 'scale factor 3.1/2: DINO 2×2 grid → 3×3', shape: [1, 5, 2, 2], out: [3, 3], scale: [1.55, 1.55] },
    { name: 'scale factor: DINO 14×14 → 6×6 (local crop), ratio 14/6.1', shape: [1, 3, 14, 14], out: [6, 6], scale: [6.1 / 14, 6.1 / 14] },
    { name: 'scale factor that differs per axis', shape: [1, 2, 5, 4], out: [12, 2], scale: [2.5, 0.6] },
  ];
  for (const c of cases) {
    it(`${c.name}: forward and gradient`, async () => {
      const x = randNd(c.shape, rng);
      const opts = c.scale ? { scaleFactor: c.scale } : {};
      const ref = (x: Nd) => bicubicRef(x, c.out[0], c.out[1], c.scale);
      const got = await run(e, () => ops.interpolateBicubic(toGpu(e, x), c.out[0], c.out[1], opts));
      expectClose(got, ref(x), { rtol: 1e-5, atol: 1e-5 });
      await gradcheck(e, [x], (x) => ops.interpolateBicubic(x, c.out[0], c.out[1], opts), ref, { maxProbes: 40 });
    });
  }

  it('reads a strided input (a positional embedding [1, P, D] seen as [1, D, g, g]) and a strided gradient', async () => {
    const [g, d] = [3, 5];
    const pe = randNd([1, g * g, d], rng);
    const asImage = (t: Tensor) => t.reshape(1, g, g, d).permute(0, 3, 1, 2);
    const ref = (pe: Nd) => bicubicRef(pe.reshape([1, g, g, d]).permute([0, 3, 1, 2]), 4, 2);
    const got = await run(e, () => ops.interpolateBicubic(asImage(toGpu(e, pe)), 4, 2));
    expectClose(got, ref(pe), { rtol: 1e-5, atol: 1e-5 });
    // The output goes back to [1, P', D] through a permute, so the backward reads a transposed gradient.
    const back = (y: Nd) => y.permute([0, 2, 3, 1]);
    await gradcheck(e, [pe], (pe) => ops.interpolateBicubic(asImage(pe), 4, 2).permute(0, 2, 3, 1), (pe) => back(ref(pe)));
  });

  it('reads an input at a non-zero offset (a slice)', async () => {
    const x = randNd([3, 2, 4, 4], rng);
    const ref = (x: Nd) => bicubicRef(new Nd(x.data.slice(32, 64), [1, 2, 4, 4]), 7, 5);
    const got = await run(e, () => ops.interpolateBicubic(toGpu(e, x).slice(0, 1, 2), 7, 5));
    expectClose(got, ref(x), { rtol: 1e-5, atol: 1e-5 });
  });

  it('matches PyTorch F.interpolate(mode="bicubic", align_corners=False), forward and backward', async () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/vit_interpolate.json', import.meta.url), 'utf8'));
    for (const [k, c] of (fixture.cases as FixtureCase[]).entries()) {
      const n = c.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + 0.5 + k));
      const [oh, ow] = c.outShape.slice(2);
      const opts = c.scaleFactor ? { scaleFactor: c.scaleFactor } : {};
      if (c.scaleFactor) {
        // PyTorch's output size for a scale factor is ⌊in·scale⌋, which our helper reproduces.
        expect([ops.bicubicOutputSize(c.inputShape[2], c.scaleFactor[0]), ops.bicubicOutputSize(c.inputShape[3], c.scaleFactor[1])]).toEqual([oh, ow]);
      }
      const [out, grad] = await e.scopeAsync(async () => {
        const xt = e.tensor(x, c.inputShape, { requiresGrad: true });
        const y = ops.interpolateBicubic(xt, oh, ow, opts);
        const w = Float32Array.from({ length: y.size }, (_, i) => Math.cos(0.23 * i));
        ops.sum(ops.mul(y, e.tensor(w, y.shape))).backward();
        const res = [await fromGpu(y), await fromGpu(xt.grad!)];
        xt.grad!.dispose();
        return res;
      });
      expectClose(out, Nd.from(c.out, c.outShape), { rtol: 1e-5, atol: 1e-6 }, `case ${k} output`);
      expectClose(grad, Nd.from(c.grad, c.inputShape), { rtol: 1e-5, atol: 1e-5 }, `case ${k} gradient`);
    }
  });

  it('the scale-factor mapping is not the size mapping (DINO 2 → 3 differs from size=3)', async () => {
    const x = randNd([1, 1, 2, 2], rng);
    const bySize = await run(e, () => ops.interpolateBicubic(toGpu(e, x), 3, 3));
    const byScale = await run(e, () => ops.interpolateBicubic(toGpu(e, x), 3, 3, { scaleFactor: 3.1 / 2 }));
    expectClose(bySize, bicubicRef(x, 3, 3), { rtol: 1e-5, atol: 1e-5 });
    const diff = Math.max(...bySize.data.map((v, i) => Math.abs(v - byScale.data[i])));
    expect(diff).toBeGreaterThan(1e-2);
  });

  it('rejects bad shapes, sizes and scales, naming the op and the shapes', async () => {
    await e.scopeAsync(async () => {
      const x3 = e.tensor(new Float32Array(12), [3, 2, 2]);
      expect(() => ops.interpolateBicubic(x3, 2, 2)).toThrow(/interpolate_bicubic: expects an f32 input \[N, C, H, W\], got Tensor\(\[3, 2, 2\]\)/);
      const x = e.tensor(new Float32Array(4), [1, 1, 2, 2]);
      expect(() => ops.interpolateBicubic(x, 0, 2)).toThrow(/output size \[0, 2\] must be positive integers \(input \[1, 1, 2, 2\]\)/);
      expect(() => ops.interpolateBicubic(x, 2.5, 2)).toThrow(/output size/);
      expect(() => ops.interpolateBicubic(x, 3, 3, { scaleFactor: [1.5, -1] })).toThrow(/scale factor \[1.5, -1\] must be positive/);
    });
  });
});

interface FixtureCase {
  inputShape: number[];
  outShape: number[];
  scaleFactor: [number, number] | null;
  out: number[];
  grad: number[];
}
