// Fused scaled-dot-product attention: forward against a float64 explicit-softmax reference, every
// backward against finite differences, and both against the composed version made of the engine's
// own matmul and softmax ops. Sequence lengths (17, 65) are not multiples of any block or workgroup
// size; head dims 20 and 7 exercise the column padding (20: a row split between invocations into
// uneven vec4 shares; 7: not a multiple of 4).

import { describe, expect, it } from 'vitest';
import { ops, Rng, type Tensor } from '../engine/index.js';
import { engine, expectClose, fromGpu, gradcheck, randNd, toGpu } from './helpers.js';
import { Nd } from './ref.js';
import { attentionRef, composedAttention } from './attention-ref.js';

const sdpa = ops.scaledDotProductAttention;
const fwdTol = { rtol: 1e-4, atol: 2e-5 };

interface Case {
  name: string;
  q: number[];
  kv: number[];
  scale?: number;
  /** Input magnitude (scores grow with its square). */
  mag?: number;
  tol?: { rtol?: number; atol?: number };
}

const cases: Case[] = [
  { name: 'B=2 H=3 N=17 d=16', q: [2, 3, 17, 16], kv: [2, 3, 17, 16] },
  { name: 'B=2 H=3 N=17 d=64', q: [2, 3, 17, 64], kv: [2, 3, 17, 64] },
  { name: 'ViT-tiny 32px: N=65 d=64', q: [1, 2, 65, 64], kv: [1, 2, 65, 64] },
  { name: '[B·H, N, d], d=20', q: [3, 33, 20], kv: [3, 33, 20] },
  { name: 'd=7, explicit scale', q: [2, 19, 7], kv: [2, 19, 7], scale: 0.9 },
  { name: 'Nq ≠ Nk', q: [2, 2, 5, 16], kv: [2, 2, 40, 16] },
  // Scores of several hundred: f32 rounds them by ~1e-5 relative, which moves the probabilities (and
  // an output made of values of magnitude 20) by ~1e-3 whichever way softmax is computed.
  { name: 'large-magnitude scores', q: [1, 2, 17, 16], kv: [1, 2, 17, 16], mag: 20, tol: { rtol: 1e-3, atol: 2e-3 } },
];

describe('scaledDotProductAttention', async () => {
  const e = await engine();

  for (const c of cases) {
    it(`${c.name}: forward and gradients of q, k, v`, async () => {
      const rng = new Rng(c.q.reduce((a, b) => a * 31 + b, c.kv[c.kv.length - 2]));
      const [q, k, v] = [c.q, c.kv, c.kv].map((s) => randNd(s, rng, { scale: c.mag }));
      const ref = (a: Nd, b: Nd, d: Nd) => attentionRef(a, b, d, c.scale);
      const fused = (a: Tensor, b: Tensor, d: Tensor) => sdpa(a, b, d, c.scale);
      const got = await e.scopeAsync(async () => fromGpu(fused(toGpu(e, q), toGpu(e, k), toGpu(e, v))));
      expect(got.data.every(Number.isFinite), 'finite output').toBe(true);
      expectClose(got, ref(q, k, v), c.tol ?? fwdTol, `${c.name} forward`);
      await gradcheck(e, [q, k, v], fused, ref, { maxProbes: 16, ...c.tol });
    });
  }

  it('non-contiguous inputs: heads permuted out of [B, N, H, d], k at a storage offset', async () => {
    const rng = new Rng(5);
    const [B, N, H, d] = [2, 17, 3, 16];
    const q = randNd([B, N, H, d], rng);
    const v = randNd([B, N, H, d], rng);
    const kBig = randNd([B + 1, H, N, d], rng);
    const heads = (x: Nd) => x.permute([0, 2, 1, 3]);
    const kOf = (x: Nd) => new Nd(x.data.slice(H * N * d), [B, H, N, d]);
    const gpu = (a: Tensor, b: Tensor, c: Tensor) => sdpa(a.permute(0, 2, 1, 3), b.slice(0, 1, B + 1), c.permute(0, 2, 1, 3));
    const ref = (a: Nd, b: Nd, c: Nd) => attentionRef(heads(a), kOf(b), heads(c));
    const got = await e.scopeAsync(async () => fromGpu(gpu(toGpu(e, q), toGpu(e, kBig), toGpu(e, v))));
    expectClose(got, ref(q, kBig, v), fwdTol, 'strided forward');
    await gradcheck(e, [q, kBig, v], gpu, ref, { maxProbes: 16 });
  });

  for (const shape of [[2, 3, 17, 16], [1, 2, 65, 64]]) {
    it(`equals the composed matmul + softmax version at ${JSON.stringify(shape)}`, async () => {
      const rng = new Rng(shape[2]);
      const [q, k, v, w] = [0, 1, 2, 3].map(() => randNd(shape, rng));
      const run = (f: typeof sdpa) =>
        e.scopeAsync(async () => {
          const ts = [q, k, v].map((x) => toGpu(e, x, true));
          const out = f(ts[0], ts[1], ts[2]);
          out.backward(toGpu(e, w));
          const res = [await fromGpu(out)];
          for (const t of ts) res.push(await fromGpu(t.grad!));
          for (const t of ts) t.grad!.dispose();
          return res;
        });
      const fused = await run(sdpa);
      const composed = await run(composedAttention);
      ['out', 'dq', 'dk', 'dv'].forEach((name, i) => expectClose(fused[i], composed[i], fwdTol, name));
    });
  }

  it('large-magnitude scores give finite gradients', async () => {
    const rng = new Rng(11);
    const [q, k, v] = [0, 1, 2].map(() => randNd([1, 2, 17, 16], rng, { scale: 100 }));
    const grads = await e.scopeAsync(async () => {
      const ts = [q, k, v].map((x) => toGpu(e, x, true));
      ops.sum(sdpa(ts[0], ts[1], ts[2])).backward();
      const res = [];
      for (const t of ts) res.push(await fromGpu(t.grad!));
      for (const t of ts) t.grad!.dispose();
      return res;
    });
    for (const g of grads) expect(g.data.every(Number.isFinite)).toBe(true);
  });

  it('rejects mismatched shapes, naming the op and the shapes', async () => {
    await e.scopeAsync(async () => {
      const t = (s: number[]) => e.zeros(s);
      expect(() => sdpa(t([2, 3, 17, 16]), t([2, 3, 17, 8]), t([2, 3, 17, 8]))).toThrow(
        /scaled_dot_product_attention: .*q \[2, 3, 17, 16\], k \[2, 3, 17, 8\], v \[2, 3, 17, 8\]/,
      );
      expect(() => sdpa(t([2, 3, 17, 16]), t([2, 4, 17, 16]), t([2, 4, 17, 16]))).toThrow(/scaled_dot_product_attention: .*leading/);
      expect(() => sdpa(t([2, 17, 16]), t([2, 17, 16]), t([2, 18, 16]))).toThrow(/scaled_dot_product_attention: k and v/);
      expect(() => sdpa(t([2, 17, 16]), t([2, 3, 17, 16]), t([2, 3, 17, 16]))).toThrow(/scaled_dot_product_attention: .*rank/);
      expect(() => sdpa(t([1, 4, 80]), t([1, 4, 80]), t([1, 4, 80]))).toThrow(/scaled_dot_product_attention: head dim/);
    });
  });
});
