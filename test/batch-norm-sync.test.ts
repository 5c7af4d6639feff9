// Synchronised batch norm on one process. A replica's view of a 2-replica batch: this engine runs
// the first half of the batch, and a stub all-reduce adds the second half's sums (computed in
// float64 on the host, as the other replica would contribute them). The first half's output, running
// statistics and input gradient must then be those of ordinary batch norm over the WHOLE batch (a
// float64 reference; the input gradient by central differences of it), and the parameters' gradients
// the first half's own terms (the gradient averaging across replicas sums them). With one replica
// (an all-reduce that returns its input) it is ordinary batch norm. The nn layer passes the sync in
// training and selection mode only. The half-batch check runs on both kernel families (chunking, reductions).

import { describe, expect, it } from 'vitest';
import { nn, ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import type { BatchNormSync } from '../engine/ops/index.js';
import { engine, expectClose, fromGpu, gpuVariantEngine, randNd, toGpu } from './helpers.js';
import { channelStats, Nd } from './ref.js';
import { trainRef } from './norm-ref.js';

const f32 = (x: Nd) => x.map((v) => Math.fround(v));

/** Rows [lo, hi) of axis 0. */
function rows(x: Nd, lo: number, hi: number): Nd {
  const per = x.size / x.shape[0];
  return Nd.from(x.data.slice(lo * per, hi * per), [hi - lo, ...x.shape.slice(1)]);
}

/** Per channel, the values of x [N, C, ...] (each channel's list). */
function byChannel(x: Nd): number[][] {
  const [n, c] = x.shape;
  const s = x.size / (n * c);
  const out: number[][] = Array.from({ length: c }, () => []);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let k = 0; k < s; k++) out[ch].push(x.data[(i * c + ch) * s + k]);
  return out;
}

/** A stub all-reduce: adds `others[k]` to the k-th call's values (and records the calls). */
function stub(others: Float64Array[]): BatchNormSync & { calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    sum(v) {
      const other = others[calls.length];
      calls.push(v.length);
      expect(other?.length, 'the op made an unexpected all-reduce').toBe(v.length);
      return v.map((t, i) => t + other[i]);
    },
  };
}

async function runBn(e: Engine, x: Nd, w: Nd, b: Nd, g: Nd, sync: BatchNormSync | null) {
  return e.scopeAsync(async () => {
    const xt = toGpu(e, x, true);
    const wt = toGpu(e, w, true);
    const bt = toGpu(e, b, true);
    const rm = e.zeros([w.size]);
    const rv = e.ones([w.size]);
    const y = ops.batchNorm(xt, wt, bt, rm, rv, { training: true, momentum: 0.5, sync });
    y.backward(toGpu(e, g));
    const out = { y: await fromGpu(y), rm: await fromGpu(rm), rv: await fromGpu(rv), dx: await fromGpu(xt.grad!), dw: await fromGpu(wt.grad!), db: await fromGpu(bt.grad!) };
    for (const t of [xt, wt, bt] as Tensor[]) t.grad?.dispose();
    return out;
  });
}

describe('synchronised batch norm', async () => {
  const e = await engine();
  // The GPU kernel variants cut each channel into many more chunks (and reduce in a tree).
  const gpu = await gpuVariantEngine();
  // [N, C, H, W] with vec4 planes, [N, C, 3] (f32 loads), [N, C] (BatchNorm1d): per replica.
  const SHAPES: number[][] = [
    [2, 3, 2, 2],
    [3, 2, 3],
    [4, 5],
  ];

  const CASES = SHAPES.flatMap((half) => [
    { half, variants: 'CPU-adapter', engine: e },
    { half, variants: 'GPU', engine: gpu },
  ]);
  it.each(CASES)('half a batch plus the other half\'s sums equals batch norm over the whole batch, forward and backward: $half per replica, $variants kernels', async ({ half, engine: e }) => {
    const rng = new Rng(11);
    const whole = [2 * half[0], ...half.slice(1)];
    const c = half[1];
    // An offset mean, so the merge of the halves' statistics is exercised beyond centred data.
    const X = f32(randNd(whole, rng).map((v) => v + 3));
    const G = f32(randNd(whole, rng));
    const w = f32(randNd([c], rng));
    const b = f32(randNd([c], rng));
    const n0 = half[0];
    const x0 = rows(X, 0, n0);
    const x1 = rows(X, n0, 2 * n0);
    const g0 = rows(G, 0, n0);
    const g1 = rows(G, n0, 2 * n0);

    // The other replica's contributions, in float64.
    const st = channelStats(X);
    const x1c = byChannel(x1);
    const g1c = byChannel(g1);
    const fwd = new Float64Array(3 * c);
    const bwd = new Float64Array(2 * c + 1);
    for (let ch = 0; ch < c; ch++) {
      fwd[3 * ch] = x1c[ch].length;
      fwd[3 * ch + 1] = x1c[ch].reduce((a, v) => a + v, 0);
      fwd[3 * ch + 2] = x1c[ch].reduce((a, v) => a + v * v, 0);
      const rstd = 1 / Math.sqrt(st.var[ch] + 1e-5);
      bwd[2 * ch] = g1c[ch].reduce((a, v) => a + v, 0);
      bwd[2 * ch + 1] = g1c[ch].reduce((a, v, i) => a + v * (x1c[ch][i] - st.mean[ch]) * rstd, 0);
    }
    bwd[2 * c] = x1c[0].length;
    const sync = stub([fwd, bwd]);
    const got = await runBn(e, x0, w, b, g0, sync);
    expect(sync.calls).toEqual([3 * c, 2 * c + 1]);

    // Forward: rows of the whole batch's normalisation; running statistics from the global batch
    // (momentum 0.5 from 0 and 1; the variance unbiased with the global count).
    expectClose(got.y, rows(trainRef(X, w, b), 0, n0), { rtol: 1e-4, atol: 1e-5 }, 'y');
    const m = st.count;
    expectClose(got.rm, Nd.from(st.mean.map((v) => 0.5 * v), [c]), { rtol: 1e-5, atol: 1e-6 }, 'running_mean');
    expectClose(got.rv, Nd.from(st.var.map((v) => 0.5 + (0.5 * v * m) / (m - 1)), [c]), { rtol: 1e-5, atol: 1e-6 }, 'running_var');

    // Backward: dL/dx0 of L = Σ G·BN(X) over the whole batch, by central differences in float64.
    const loss = (x: Nd) => {
      const y = trainRef(x, w, b);
      let s = 0;
      for (let i = 0; i < y.size; i++) s += y.data[i] * G.data[i];
      return s;
    };
    const num = new Float64Array(x0.size);
    for (let i = 0; i < x0.size; i++) {
      const eps = 1e-6;
      const p = Nd.from(X.data, X.shape);
      p.data[i] += eps;
      const q = Nd.from(X.data, X.shape);
      q.data[i] -= eps;
      num[i] = (loss(p) - loss(q)) / (2 * eps);
    }
    expectClose(got.dx, new Nd(num, x0.shape), { rtol: 2e-3, atol: 2e-4 }, 'dx');
    // The parameters' gradients: this replica's own terms, Σ g0 and Σ g0·x̂0 with the global statistics.
    const g0c = byChannel(g0);
    const x0c = byChannel(x0);
    const db = g0c.map((v) => v.reduce((a, t) => a + t, 0));
    const dw = g0c.map((v, ch) => v.reduce((a, t, i) => a + (t * (x0c[ch][i] - st.mean[ch])) / Math.sqrt(st.var[ch] + 1e-5), 0));
    expectClose(got.db, Nd.from(db, [c]), { rtol: 1e-4, atol: 1e-5 }, 'db');
    expectClose(got.dw, Nd.from(dw, [c]), { rtol: 1e-4, atol: 1e-5 }, 'dw');
  });

  it('with one replica it is ordinary batch norm', async () => {
    const rng = new Rng(3);
    const x = f32(randNd([4, 3, 2, 2], rng).map((v) => v - 2));
    const g = f32(randNd([4, 3, 2, 2], rng));
    const w = f32(randNd([3], rng));
    const b = f32(randNd([3], rng));
    const plain = await runBn(e, x, w, b, g, null);
    const synced = await runBn(e, x, w, b, g, { sum: (v) => Float64Array.from(v) });
    for (const k of ['y', 'rm', 'rv', 'dx', 'dw', 'db'] as const) expectClose(synced[k], plain[k], { rtol: 1e-5, atol: 1e-6 }, k);
  });

  it('the layer synchronises in training and selection mode, not in eval mode', async () => {
    const calls: number[] = [];
    const sync: BatchNormSync = { sum: (v) => (calls.push(v.length), Float64Array.from(v)) };
    const bn = new nn.BatchNorm2d(e, 3);
    const model = new nn.Sequential([bn, new nn.BatchNorm1d(e, 2)]);
    expect(nn.setSyncBatchNorm(model, sync)).toBe(2);
    const x = e.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [2, 3, 2, 2]);
    bn.train();
    await bn.forward(x).toArray();
    expect(calls).toEqual([9]);
    bn.eval();
    await bn.forward(x).toArray();
    expect(calls).toEqual([9]);
    nn.setBatchStatsOnly(model, true);
    await e.noGrad(() => bn.forward(x)).toArray();
    expect(calls).toEqual([9, 9]);
    nn.setBatchStatsOnly(model, false);
    nn.setSyncBatchNorm(model, null);
    bn.train();
    await bn.forward(x).toArray();
    expect(calls).toEqual([9, 9]);
  });
});
