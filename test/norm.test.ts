// Normalisation, softmax and the small losses against float64 references: forward on random inputs
// (odd sizes, rows longer than a workgroup, non-contiguous views), every backward against finite
// differences, batch-norm running statistics, and the error messages.

import { describe, expect, it } from 'vitest';
import { ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { engine, gpuVariantEngine, expectClose, fromGpu, gradcheck, randNd, toGpu } from './helpers.js';
import { channelStats, Nd, reduce, sumOf, zip } from './ref.js';
import { batchNormRef, layerNormRef, logSoftmaxRef, softmaxRef, trainRef } from './norm-ref.js';

// ---------------------------------------------------------------- float64 references


function crossEntropyRef(logits: Nd, labels: number[], smoothing: number, reduction: 'mean' | 'sum' | 'none'): Nd {
  const [n, k] = logits.shape;
  const lp = logSoftmaxRef(logits, 1);
  const per = labels.map((y, i) => {
    const row = [...lp.data.slice(i * k, (i + 1) * k)];
    return -(1 - smoothing) * row[y] - (smoothing / k) * sumOf(row);
  });
  if (reduction === 'none') return Nd.from(per, [n]);
  return Nd.from([reduction === 'sum' ? sumOf(per) : sumOf(per) / n], []);
}

const norm = (x: Nd, axis: number) => reduce(x, axis, (v) => Math.sqrt(sumOf(v.map((t) => t * t))));
const l2NormalizeRef = (x: Nd, axis: number, eps: number) => zip((a, r) => a / Math.max(r, eps), x, norm(x, axis));
const cosineRef = (a: Nd, b: Nd, eps = 1e-8) =>
  reduce(zip((p, q) => p * q, l2NormalizeRef(a, 1, eps), l2NormalizeRef(b, 1, eps)), 1, sumOf, false);

/** The values the GPU really sees: inputs rounded to f32 (matters for inputs with a large offset). */
const f32 = (x: Nd) => x.map((v) => Math.fround(v));
const T2 = (x: Nd) => x.permute([1, 0]);

async function run(e: Engine, fn: () => Tensor): Promise<Nd> {
  return e.scopeAsync(async () => fromGpu(fn()));
}

// ---------------------------------------------------------------- batch norm

describe('batchNorm', async () => {
  const e = await engine();
  const rng = new Rng(11);
  const train = { training: true };

  it('training, [N, C, H, W] with affine: forward and gradients of x, weight, bias', async () => {
    const [x, w, b] = [randNd([3, 5, 7, 9], rng), randNd([5], rng), randNd([5], rng)];
    const got = await run(e, () => ops.batchNorm(toGpu(e, x), toGpu(e, w), toGpu(e, b), null, null, train));
    expectClose(got, trainRef(x, w, b), { rtol: 1e-4, atol: 1e-4 });
    await gradcheck(e, [x, w, b], (x, w, b) => ops.batchNorm(x, w, b, null, null, train), trainRef);
  });

  it('training, [N, C] without affine (SimSiam projector), from a non-contiguous view', async () => {
    const x = randNd([5, 6], rng); // used as xᵀ: [6, 5], N = 6, C = 5
    const got = await run(e, () => ops.batchNorm(toGpu(e, x).T, null, null, null, null, train));
    expectClose(got, trainRef(T2(x), null, null), { rtol: 1e-4, atol: 1e-4 });
    await gradcheck(e, [x], (x) => ops.batchNorm(x.T, null, null, null, null, train), (x) => trainRef(T2(x), null, null));
  });

  it('training, non-contiguous [N, C, H, W] (channels-first view of an [C, N, H, W] buffer)', async () => {
    const x = randNd([5, 3, 4, 3], rng);
    const ref = (x: Nd, w: Nd) => trainRef(x.permute([1, 0, 2, 3]), w, null);
    const w = randNd([5], rng);
    const gpu = (x: Tensor, w: Tensor) => ops.batchNorm(x.permute(1, 0, 2, 3), w, null, null, null, train);
    const got = await run(e, () => gpu(toGpu(e, x), toGpu(e, w)));
    expectClose(got, ref(x, w), { rtol: 1e-4, atol: 1e-4 });
    await gradcheck(e, [x, w], gpu, ref);
  });

  it('training keeps precision for a channel with a large mean (two-pass statistics)', async () => {
    const x = f32(randNd([4, 3, 8, 8], rng).map((v) => 1000 + v));
    const got = await run(e, () => ops.batchNorm(toGpu(e, x), null, null, null, null, train));
    expectClose(got, trainRef(x, null, null), { rtol: 1e-3, atol: 1e-3 });
  });

  it('eval: running statistics, forward and gradients', async () => {
    const [x, w, b] = [randNd([3, 5, 7, 9], rng), randNd([5], rng), randNd([5], rng)];
    const rm = randNd([5], rng);
    const rv = randNd([5], rng, { positive: true });
    const ref = (x: Nd, w: Nd, b: Nd) => batchNormRef(x, w, b, [...rm.data], [...rv.data]);
    const gpu = (x: Tensor, w: Tensor, b: Tensor) =>
      ops.batchNorm(x, w, b, toGpu(e, rm), toGpu(e, rv), { training: false });
    const got = await run(e, () => gpu(toGpu(e, x), toGpu(e, w), toGpu(e, b)));
    expectClose(got, ref(x, w, b), { rtol: 1e-4, atol: 1e-4 });
    await gradcheck(e, [x, w, b], gpu, ref);
  });

  it('running statistics after two updates match PyTorch (unbiased running_var, momentum)', async () => {
    const rm0 = randNd([5], rng);
    const rv0 = randNd([5], rng, { positive: true });
    const xs = [randNd([3, 5, 7, 9], rng), randNd([3, 5, 7, 9], rng, { scale: 2 })];
    const momentum = 0.3;
    const [gotM, gotV] = await e.scopeAsync(async () => {
      const rm = toGpu(e, rm0);
      const rv = toGpu(e, rv0);
      for (const x of xs) ops.batchNorm(toGpu(e, x), null, null, rm, rv, { training: true, momentum });
      return [await fromGpu(rm), await fromGpu(rv)];
    });
    let m = [...rm0.data];
    let v = [...rv0.data];
    for (const x of xs) {
      const st = channelStats(x);
      const unbiased = st.count / (st.count - 1);
      m = m.map((r, c) => (1 - momentum) * r + momentum * st.mean[c]);
      v = v.map((r, c) => (1 - momentum) * r + momentum * st.var[c] * unbiased);
    }
    expectClose(gotM, Nd.from(m, [5]), { rtol: 1e-5, atol: 1e-6 }, 'running_mean');
    expectClose(gotV, Nd.from(v, [5]), { rtol: 1e-5, atol: 1e-6 }, 'running_var');
  });

  it('updateStats: false normalises with batch statistics and leaves the running buffers bit-identical', async () => {
    const x = randNd([4, 5, 3, 3], rng);
    const rm0 = Float32Array.from(randNd([5], rng).data);
    const rv0 = Float32Array.from(randNd([5], rng, { positive: true }).data);
    const [y, rm, rv] = await e.scopeAsync(async () => {
      const rm = e.tensor(rm0, [5]);
      const rv = e.tensor(rv0, [5]);
      const y = await fromGpu(ops.batchNorm(toGpu(e, x), null, null, rm, rv, { training: true, updateStats: false }));
      return [y, await rm.toArray(), await rv.toArray()];
    });
    expectClose(y, trainRef(x, null, null), { rtol: 1e-4, atol: 1e-4 });
    expect(new Uint32Array(rm.buffer)).toEqual(new Uint32Array(rm0.buffer));
    expect(new Uint32Array(rv.buffer)).toEqual(new Uint32Array(rv0.buffer));
  });

  it('errors name the op and both shapes', async () => {
    await e.scopeAsync(async () => {
      const x = toGpu(e, randNd([3, 5, 2, 2], rng));
      expect(() => ops.batchNorm(x, e.ones([4]), null, null, null, train)).toThrow(/batch_norm: weight.*\[4\].*\[3, 5, 2, 2\]/);
      expect(() => ops.batchNorm(x, null, e.ones([5, 1]), null, null, train)).toThrow(/batch_norm: bias.*\[5, 1\].*\[3, 5, 2, 2\]/);
      expect(() => ops.batchNorm(x, null, null, e.zeros([6]), e.ones([6]), train)).toThrow(/batch_norm: running_mean.*\[6\]/);
      expect(() => ops.batchNorm(x, null, null, null, null, { training: false })).toThrow(/batch_norm: eval mode/);
      expect(() => ops.batchNorm(e.ones([1, 5]), null, null, null, null, train)).toThrow(/batch_norm: expected more than 1 value/);
    });
  });
});

// ---------------------------------------------------------------- layer norm

for (const variant of ['default', 'gpu'] as const) describe(`layerNorm (${variant} kernels)`, async () => {
  const e = await (variant === 'gpu' ? gpuVariantEngine() : engine());
  const rng = new Rng(23);

  // Row lengths around the thread layouts: 1, a partial vec4, ViT-tiny's 192 and ViT-small's 384, one
  // past a 256-thread row; more rows than one workgroup holds, and a partial last workgroup.
  for (const [rows, d] of [[3, 1], [5, 3], [67, 5], [130, 192], [9, 384], [4, 1025]]) {
    it(`[${rows}, ${d}] affine: forward and gradients`, async () => {
      const [x, w, b] = [randNd([rows, d], rng), randNd([d], rng), randNd([d], rng)];
      const got = await run(e, () => ops.layerNorm(toGpu(e, x), toGpu(e, w), toGpu(e, b)));
      expectClose(got, layerNormRef(x, w, b), { rtol: 1e-4, atol: 1e-4 });
      await gradcheck(e, [x, w, b], (x, w, b) => ops.layerNorm(x, w, b), (x, w, b) => layerNormRef(x, w, b), { maxProbes: 6 });
    });
  }

  it('rows longer than a workgroup (D = 700), affine: forward and gradients', async () => {
    const [x, w, b] = [randNd([3, 5, 700], rng), randNd([700], rng), randNd([700], rng)];
    const got = await run(e, () => ops.layerNorm(toGpu(e, x), toGpu(e, w), toGpu(e, b)));
    expectClose(got, layerNormRef(x, w, b), { rtol: 1e-4, atol: 1e-4 });
    await gradcheck(e, [x, w, b], (x, w, b) => ops.layerNorm(x, w, b), (x, w, b) => layerNormRef(x, w, b));
  });

  it('many rows (more than one weight-gradient chunk), weight only', async () => {
    const [x, w] = [randNd([150, 9], rng), randNd([9], rng)];
    const ref = (x: Nd, w: Nd) => layerNormRef(x, w, null);
    const got = await run(e, () => ops.layerNorm(toGpu(e, x), toGpu(e, w)));
    expectClose(got, ref(x, w), { rtol: 1e-4, atol: 1e-4 });
    await gradcheck(e, [x, w], (x, w) => ops.layerNorm(x, w), ref);
  });

  it('bias only (bound where the absent weight would be), with a view of the bias', async () => {
    const [x, b2] = [randNd([70, 6], rng), randNd([2, 6], rng)];
    // The bias is the second row of a [2, 6] tensor: a binding that starts past its buffer's start.
    const b = Nd.from(b2.data.slice(6), [6]);
    const ref = (x: Nd, b: Nd) => layerNormRef(x, null, b);
    const got = await run(e, () => ops.layerNorm(toGpu(e, x), null, toGpu(e, b2).slice(0, 1, 2).reshape([6])));
    expectClose(got, ref(x, b), { rtol: 1e-4, atol: 1e-4 });
    await gradcheck(e, [x, b], (x, b) => ops.layerNorm(x, null, b), ref);
  });

  it('no affine, non-contiguous input with a large offset', async () => {
    const x = f32(randNd([33, 7], rng).map((v) => 500 + v));
    const ref = (x: Nd) => layerNormRef(T2(x), null, null);
    const got = await run(e, () => ops.layerNorm(toGpu(e, x).T));
    expectClose(got, ref(x), { rtol: 1e-3, atol: 1e-3 });
    const y = randNd([33, 7], rng);
    await gradcheck(e, [y], (x) => ops.layerNorm(x.T), ref);
  });

  it('errors name the op and both shapes', async () => {
    await e.scopeAsync(async () => {
      const x = toGpu(e, randNd([4, 6], rng));
      expect(() => ops.layerNorm(x, e.ones([5]))).toThrow(/layer_norm: weight.*\[5\].*\[4, 6\]/);
      expect(() => ops.layerNorm(x, null, e.ones([4]))).toThrow(/layer_norm: bias.*\[4\].*\[4, 6\]/);
    });
  });
});

// ---------------------------------------------------------------- softmax

for (const variant of ['default', 'gpu'] as const) describe(`softmax and logSoftmax (${variant} kernels)`, async () => {
  const e = await (variant === 'gpu' ? gpuVariantEngine() : engine());
  const rng = new Rng(37);
  const cases: { name: string; shape: number[]; axis: number }[] = [
    { name: 'last axis, K = 700', shape: [3, 700], axis: -1 },
    { name: 'last axis, K = 1', shape: [4, 1], axis: -1 },
    { name: 'last axis, K = 5, rows past a workgroup', shape: [70, 5], axis: -1 },
    { name: "last axis, ViT-tiny's K = 65", shape: [2, 3, 65], axis: -1 },
    { name: 'last axis, K = 1025', shape: [2, 1025], axis: -1 },
    { name: 'middle axis', shape: [4, 9, 5], axis: 1 },
    { name: 'first axis', shape: [7, 3, 2], axis: 0 },
  ];
  for (const log of [false, true]) {
    const [gpuOp, refOp] = log ? [ops.logSoftmax, logSoftmaxRef] : [ops.softmax, softmaxRef];
    for (const c of cases) {
      it(`${log ? 'logSoftmax' : 'softmax'}, ${c.name}`, async () => {
        const x = randNd(c.shape, rng, { scale: 3 });
        const axis = c.axis < 0 ? c.axis + c.shape.length : c.axis;
        const got = await run(e, () => gpuOp(toGpu(e, x), c.axis));
        expectClose(got, refOp(x, axis), { rtol: 1e-4, atol: 1e-6 });
        await gradcheck(e, [x], (x) => gpuOp(x, c.axis), (x) => refOp(x, axis));
      });
    }
    it(`${log ? 'logSoftmax' : 'softmax'} of a transposed view`, async () => {
      const x = randNd([11, 6], rng);
      const got = await run(e, () => gpuOp(toGpu(e, x).T));
      expectClose(got, refOp(T2(x), 1), { rtol: 1e-4, atol: 1e-6 });
      await gradcheck(e, [x], (x) => gpuOp(x.T), (x) => refOp(T2(x), 1));
    });
  }

  it('rows with a large offset stay finite and exact', async () => {
    const x = randNd([3, 300], rng, { scale: 2 });
    for (let i = 0; i < 300; i++) {
      x.data[i] += 80;
      x.data[600 + i] += 1000;
    }
    const xf = f32(x);
    const [p, lp] = await e.scopeAsync(async () => {
      const t = toGpu(e, xf);
      return [await fromGpu(ops.softmax(t)), await fromGpu(ops.logSoftmax(t))];
    });
    expect([...p.data, ...lp.data].every(Number.isFinite)).toBe(true);
    expectClose(p, softmaxRef(xf, 1), { rtol: 1e-4, atol: 1e-7 });
    expectClose(lp, logSoftmaxRef(xf, 1), { rtol: 1e-4, atol: 2e-4 });
  });
});

// ---------------------------------------------------------------- losses

describe('crossEntropy, l2Normalize, cosineSimilarity', async () => {
  const e = await engine();
  const rng = new Rng(41);
  const labels = [3, 0, 10, 7, 7, 1];

  for (const reduction of ['mean', 'sum', 'none'] as const) {
    for (const smoothing of [0, 0.1]) {
      it(`crossEntropy, reduction ${reduction}, label smoothing ${smoothing}`, async () => {
        const x = randNd([6, 11], rng, { scale: 2 });
        const ref = (x: Nd) => crossEntropyRef(x, labels, smoothing, reduction);
        const gpu = (x: Tensor) => ops.crossEntropy(x, labels, { reduction, labelSmoothing: smoothing });
        expectClose(await run(e, () => gpu(toGpu(e, x))), ref(x), { rtol: 1e-5, atol: 1e-5 });
        await gradcheck(e, [x], gpu, ref);
      });
    }
  }

  it('crossEntropy with labels as an i32 tensor matches host labels', async () => {
    const x = randNd([6, 11], rng);
    const got = await run(e, () => ops.crossEntropy(toGpu(e, x), e.tensor(labels, [6], { dtype: 'i32' }), { reduction: 'none' }));
    expectClose(got, crossEntropyRef(x, labels, 0, 'none'), { rtol: 1e-5, atol: 1e-5 });
  });

  it('crossEntropy rejects out-of-range labels, and poisons the loss for bad labels on the GPU', async () => {
    const x = randNd([3, 4], rng);
    const got = await e.scopeAsync(async () => {
      const t = toGpu(e, x);
      expect(() => ops.crossEntropy(t, [0, 4, 1])).toThrow(/cross_entropy: label 4 at position 1 is out of range for 4 classes/);
      expect(() => ops.crossEntropy(t, [0, -1, 1])).toThrow(/cross_entropy: label -1/);
      expect(() => ops.crossEntropy(t, [0, 1])).toThrow(/cross_entropy: 2 labels for logits \[3, 4\]/);
      expect(() => ops.crossEntropy(t, e.tensor([0, 1], [2], { dtype: 'i32' }))).toThrow(/cross_entropy: labels .*\[2\].*\[3, 4\]/);
      expect(() => ops.crossEntropy(t, e.tensor([0, 1, 2], [3]))).toThrow(/cross_entropy: labels/);
      return fromGpu(ops.crossEntropy(t, e.tensor([0, 9, 1], [3], { dtype: 'i32' }), { reduction: 'none' }));
    });
    expect(Number.isFinite(got.data[0]) && Number.isFinite(got.data[2])).toBe(true);
    expect(Number.isFinite(got.data[1])).toBe(false);
  });

  it('l2Normalize along the last and the first axis', async () => {
    for (const axis of [1, 0]) {
      const x = randNd([5, 13], rng);
      const got = await run(e, () => ops.l2Normalize(toGpu(e, x), axis));
      expectClose(got, l2NormalizeRef(x, axis, 1e-12), { rtol: 1e-5, atol: 1e-6 });
      await gradcheck(e, [x], (x) => ops.l2Normalize(x, axis), (x) => l2NormalizeRef(x, axis, 1e-12));
    }
  });

  it('l2Normalize of a zero row and of a row below eps: x / eps, no NaN', async () => {
    const x = Nd.from([0, 0, 0, 3e-13, -4e-13, 0, 1, 2, 2], [3, 3]);
    const got = await run(e, () => ops.l2Normalize(toGpu(e, x)));
    expectClose(got, l2NormalizeRef(f32(x), 1, 1e-12), { rtol: 1e-5, atol: 1e-6 });
    const g = await e.scopeAsync(async () => {
      const t = toGpu(e, x, true);
      ops.sum(ops.l2Normalize(t)).backward();
      return fromGpu(t.grad!);
    });
    expect([...g.data].every(Number.isFinite)).toBe(true);
  });

  it('cosineSimilarity, with and without broadcasting', async () => {
    const [a, b] = [randNd([6, 17], rng), randNd([6, 17], rng)];
    expectClose(await run(e, () => ops.cosineSimilarity(toGpu(e, a), toGpu(e, b))), cosineRef(a, b), { rtol: 1e-5, atol: 1e-6 });
    await gradcheck(e, [a, b], (a, b) => ops.cosineSimilarity(a, b), (a, b) => cosineRef(a, b));
    const row = randNd([17], rng);
    const rowRef = (a: Nd, r: Nd) => cosineRef(a, zip((p) => p, r.reshape([1, 17]), Nd.zeros([6, 17])));
    expectClose(await run(e, () => ops.cosineSimilarity(toGpu(e, a), toGpu(e, row))), rowRef(a, row), { rtol: 1e-5, atol: 1e-6 });
    await gradcheck(e, [a, row], (a, r) => ops.cosineSimilarity(a, r), rowRef);
  });

  it('cosineSimilarity uses eps on each norm separately (docs/method.md §2: ε = 1e-8 on each norm)', async () => {
    // ‖a‖ = 1e-9 < eps, ‖b‖ = 5: a·b / (1e-8 · 5), not a·b / max(‖a‖·‖b‖, eps).
    const a = Nd.from([6e-10, 8e-10], [1, 2]);
    const b = Nd.from([3, 4], [1, 2]);
    const got = await run(e, () => ops.cosineSimilarity(toGpu(e, a), toGpu(e, b)));
    expectClose(got, Nd.from([(6e-10 * 3 + 8e-10 * 4) / (1e-8 * 5)], [1]), { rtol: 1e-4, atol: 0 });
  });
});
