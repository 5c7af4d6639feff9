// Batch norm in its two-launch form and fused with what follows it in a ResNet (ReLU; residual add
// and ReLU), against float64 references: forward and every gradient (x, weight, bias, residual)
// against finite differences of the reference, on shapes that take each path of the kernels (vec4
// planes and odd ones, N = 1, 1×1 planes, [N, C], channels cut into many chunks), non-contiguous
// operands, running statistics, eval and selection modes, and the number of launches. Each case runs
// on the default engine (CPU variants on lavapipe) and on one forced onto the GPU variants.

import { describe, expect, it } from 'vitest';
import { nn, ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { engine, expectClose, fromGpu, gpuVariantEngine, gradcheck, randNd, toGpu } from './helpers.js';
import { channelStats, Nd } from './ref.js';

// ---------------------------------------------------------------- float64 references


interface Fuse {
  residual?: boolean;
  relu?: boolean;
}

/** relu?(bn(x) + r?) with the given statistics (the batch's when none are given). */
function bnRef(x: Nd, w: Nd | null, b: Nd | null, r: Nd | null, relu: boolean, st?: { mean: number[]; var: number[] }, eps = 1e-5): Nd {
  const [n, c] = x.shape;
  const s = x.size / (n * c);
  const { mean, var: vr } = st ?? channelStats(x);
  return x.map((v, i) => {
    const ch = Math.floor(i / s) % c;
    const z = ((v - mean[ch]) / Math.sqrt(vr[ch] + eps)) * (w ? w.data[ch] : 1) + (b ? b.data[ch] : 0) + (r ? r.data[i] : 0);
    return relu ? Math.max(z, 0) : z;
  });
}

const f32 = (x: Nd) => x.map((v) => Math.fround(v));

async function run(e: Engine, fn: () => Tensor): Promise<Nd> {
  return e.scopeAsync(async () => fromGpu(fn()));
}

// ---------------------------------------------------------------- cases

interface Case {
  shape: number[];
  affine: boolean;
  fuse: Fuse;
  what: string;
}

const CASES: Case[] = [
  { shape: [3, 5, 7, 9], affine: true, fuse: {}, what: 'odd plane' },
  { shape: [3, 5, 7, 9], affine: true, fuse: { relu: true }, what: 'odd plane, ReLU' },
  { shape: [7, 3, 4, 4], affine: true, fuse: { residual: true, relu: true }, what: 'vec4 plane, add + ReLU' },
  { shape: [2, 5, 1, 1], affine: true, fuse: { residual: true, relu: true }, what: '1×1 plane' },
  { shape: [1, 3, 5, 5], affine: false, fuse: { relu: true }, what: 'N = 1, no affine' },
  { shape: [6, 5], affine: true, fuse: { relu: true }, what: '[N, C]' },
  { shape: [4, 3, 6, 2], affine: true, fuse: { residual: true }, what: 'add without ReLU' },
  { shape: [2, 6, 16, 16], affine: true, fuse: { residual: true, relu: true }, what: '128-invocation workgroups' },
  { shape: [12, 3, 28, 28], affine: true, fuse: { residual: true, relu: true }, what: 'many chunks per channel, vec4' },
  { shape: [9, 3, 27, 27], affine: true, fuse: { relu: true }, what: 'many chunks per channel, odd plane' },
];

const variants: [string, () => Promise<Engine>][] = [
  ['default kernels', engine],
  ['GPU kernels', gpuVariantEngine],
];

for (const [variant, getEngine] of variants) {
  describe(`batchNorm fused, training (${variant})`, async () => {
    const e = await getEngine();
    const rng = new Rng(31);

    for (const k of CASES) {
      it(`${k.what} ${JSON.stringify(k.shape)}: forward and gradients of every operand`, async () => {
        const c = k.shape[1];
        const x = randNd(k.shape, rng);
        const w = k.affine ? randNd([c], rng) : null;
        const b = k.affine ? randNd([c], rng) : null;
        const r = k.fuse.residual ? randNd(k.shape, rng) : null;
        const relu = !!k.fuse.relu;
        const nds = [x, w, b, r].filter((t): t is Nd => !!t);
        // Unpack the operand list in the order it was built: x, [w, b], [r].
        const split = <T,>(ts: T[]) => {
          const [xx, ...rest] = ts;
          const ww = k.affine ? rest.shift()! : null;
          const bb = k.affine ? rest.shift()! : null;
          return { xx, ww, bb, rr: k.fuse.residual ? rest.shift()! : null };
        };
        const gpu = (...ts: Tensor[]) => {
          const { xx, ww, bb, rr } = split(ts);
          return ops.batchNorm(xx, ww, bb, null, null, { training: true, residual: rr, relu });
        };
        const ref = (...ns: Nd[]) => {
          const { xx, ww, bb, rr } = split(ns);
          return bnRef(xx, ww, bb, rr, relu);
        };
        expectClose(await run(e, () => gpu(...nds.map((t) => toGpu(e, t)))), ref(...nds), { rtol: 1e-4, atol: 1e-4 });
        await gradcheck(e, nds, gpu, ref);
      });
    }

    it('non-contiguous input and residual (channels-first views of [C, N, H, W] buffers)', async () => {
      const [x, r, w, b] = [randNd([5, 3, 4, 3], rng), randNd([5, 3, 4, 3], rng), randNd([5], rng), randNd([5], rng)];
      const p = (t: Nd) => t.permute([1, 0, 2, 3]);
      const ref = (x: Nd, w: Nd, b: Nd, r: Nd) => bnRef(p(x), w, b, p(r), true);
      const gpu = (x: Tensor, w: Tensor, b: Tensor, r: Tensor) =>
        ops.batchNorm(x.permute(1, 0, 2, 3), w, b, null, null, { training: true, residual: r.permute(1, 0, 2, 3), relu: true });
      expectClose(await run(e, () => gpu(toGpu(e, x), toGpu(e, w), toGpu(e, b), toGpu(e, r))), ref(x, w, b, r), { rtol: 1e-4, atol: 1e-4 });
      await gradcheck(e, [x, w, b, r], gpu, ref);
    });

    it('a channel with a large mean keeps its variance across chunks (Chan merge)', async () => {
      const x = f32(randNd([12, 3, 28, 28], rng).map((v, i) => (Math.floor(i / 784) % 3 === 1 ? 1000 + v : v)));
      const got = await run(e, () => ops.batchNorm(toGpu(e, x), null, null, null, null, { training: true, relu: true }));
      expectClose(got, bnRef(x, null, null, null, true), { rtol: 1e-3, atol: 1e-3 });
    });

    it('every chunk of a channel normalises with bit-identical statistics', async () => {
      // Image 0 and image 11 are equal and lie in different chunks: their outputs must be equal bit for bit.
      const [n, c, s] = [12, 3, 28 * 28];
      const x = randNd([n, c, 28, 28], rng);
      x.data.copyWithin((n - 1) * c * s, 0, c * s);
      const y = await run(e, () => ops.batchNorm(toGpu(e, x), null, null, null, null, { training: true }));
      const bits = (k: number) => new Uint32Array(Float32Array.from(y.data.subarray(k * c * s, (k + 1) * c * s)).buffer);
      expect(bits(n - 1)).toEqual(bits(0));
    });

    it('eval mode, fused: running statistics, forward and gradients', async () => {
      const [x, w, b, r] = [randNd([3, 5, 4, 4], rng), randNd([5], rng), randNd([5], rng), randNd([3, 5, 4, 4], rng)];
      const rm = randNd([5], rng);
      const rv = randNd([5], rng, { positive: true });
      const st = { mean: [...rm.data], var: [...rv.data] };
      const ref = (x: Nd, w: Nd, b: Nd, r: Nd) => bnRef(x, w, b, r, true, st);
      const gpu = (x: Tensor, w: Tensor, b: Tensor, r: Tensor) =>
        ops.batchNorm(x, w, b, toGpu(e, rm), toGpu(e, rv), { training: false, residual: r, relu: true });
      expectClose(await run(e, () => gpu(toGpu(e, x), toGpu(e, w), toGpu(e, b), toGpu(e, r))), ref(x, w, b, r), { rtol: 1e-4, atol: 1e-4 });
      await gradcheck(e, [x, w, b, r], gpu, ref);
    });
  });
}

describe('BatchNorm2d with an epilogue: running statistics, modes, launches', async () => {
  const e = await engine();
  const rng = new Rng(37);

  /** A BatchNorm2d with random affine parameters and running statistics; returns them in float64. */
  function module(c: number, momentum = 0.3) {
    const bn = new nn.BatchNorm2d(e, c, { momentum });
    const init = { weight: randNd([c], rng), bias: randNd([c], rng), running_mean: randNd([c], rng), running_var: randNd([c], rng, { positive: true }) };
    e.scope(() => bn.loadStateDict(Object.fromEntries(Object.entries(init).map(([k, v]) => [k, toGpu(e, v)])), { strict: false }));
    return { bn, init };
  }

  it('training: output, running statistics (unbiased variance, momentum) and num_batches_tracked', async () => {
    const { bn, init } = module(5);
    const [x, r] = [randNd([4, 5, 6, 6], rng), randNd([4, 5, 6, 6], rng)];
    const y = await run(e, () => bn.forward(toGpu(e, x), { residual: toGpu(e, r), relu: true }));
    expectClose(y, bnRef(x, init.weight, init.bias, r, true), { rtol: 1e-4, atol: 1e-4 });
    const st = channelStats(x);
    const unbiased = st.count / (st.count - 1);
    const m = [...init.running_mean.data].map((v, c) => 0.7 * v + 0.3 * st.mean[c]);
    const v = [...init.running_var.data].map((v, c) => 0.7 * v + 0.3 * st.var[c] * unbiased);
    expectClose(await fromGpu(bn.running_mean), Nd.from(m, [5]), { rtol: 1e-5, atol: 1e-6 }, 'running_mean');
    expectClose(await fromGpu(bn.running_var), Nd.from(v, [5]), { rtol: 1e-5, atol: 1e-6 }, 'running_var');
    expect(await bn.num_batches_tracked.item()).toBe(1);
  });

  it('selection mode (train or eval): batch statistics, every buffer left bit-identical', async () => {
    const { bn, init } = module(3);
    const x = randNd([5, 3, 3, 3], rng);
    const buffers = async () => Promise.all([bn.running_mean, bn.running_var, bn.num_batches_tracked].map(async (t) => [...new Uint32Array((await t.toArray()).buffer)]));
    const before = await buffers();
    nn.setBatchStatsOnly(bn, true);
    for (const training of [true, false]) {
      bn.train(training);
      const y = await run(e, () => bn.forward(toGpu(e, x), { relu: true }));
      expectClose(y, bnRef(x, init.weight, init.bias, null, true), { rtol: 1e-4, atol: 1e-4 }, `selection, training ${training}`);
    }
    nn.setBatchStatsOnly(bn, false);
    expect(await buffers()).toEqual(before);
    const st = { mean: [...init.running_mean.data], var: [...init.running_var.data] };
    const y = await run(e, () => bn.forward(toGpu(e, x), { relu: true }));
    expectClose(y, bnRef(x, init.weight, init.bias, null, true, st), { rtol: 1e-4, atol: 1e-4 }, 'eval');
    expect(await buffers(), 'eval moves nothing').toEqual(before);
  });

  it('launches: two forward (one in eval), two backward, for every epilogue', async () => {
    const count = () => e.backend.counters.dispatches;
    for (const fuse of [{}, { relu: true }, { residual: true, relu: true }]) {
      for (const training of [true, false]) {
        const { bn } = module(8);
        bn.train(training);
        await e.scopeAsync(async () => {
          const x = toGpu(e, randNd([4, 8, 6, 6], rng), true);
          const r = fuse.residual ? toGpu(e, randNd([4, 8, 6, 6], rng), true) : undefined;
          const g = toGpu(e, randNd([4, 8, 6, 6], rng));
          await e.backend.sync();
          const c0 = count();
          const y = bn.forward(x, { residual: r, relu: fuse.relu });
          const c1 = count();
          y.backward(g);
          const c2 = count();
          expect(c1 - c0, `forward ${JSON.stringify(fuse)} training ${training}`).toBe(training ? 2 : 1);
          expect(c2 - c1, `backward ${JSON.stringify(fuse)} training ${training}`).toBe(2);
          const operands = [x, bn.weight!, bn.bias!, ...(r ? [r] : [])];
          expect(operands.map((t) => !!t.grad), 'every operand has its gradient').toEqual(operands.map(() => true));
          for (const t of [x, r]) t?.grad?.dispose();
          bn.zeroGrad();
        });
      }
    }
  });

  it('errors name the op and the shapes', async () => {
    await e.scopeAsync(async () => {
      const x = e.zeros([2, 3, 2, 2]);
      const train = { training: true };
      expect(() => ops.batchNorm(x, null, null, null, null, { ...train, residual: e.zeros([2, 3, 2, 1]) })).toThrow(/batch_norm: residual.*\[2, 3, 2, 1\].*\[2, 3, 2, 2\]/);
      expect(() => ops.batchNorm(x, null, null, null, null, { ...train, numBatchesTracked: e.zeros([1]) })).toThrow(/batch_norm: numBatchesTracked.*i32/);
    });
  });
});
