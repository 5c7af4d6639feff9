// Table-driven kernel tests (tinygrad's test_ops): each row is an op, its input shapes, the GPU call
// and the float64 reference. Every row checks the forward on fresh random inputs and the backward
// against finite differences. Adding an op adds a row.

import { describe, it } from 'vitest';
import { ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { engine, gpuVariantEngine, expectClose, fromGpu, gradcheck, randNd, toGpu } from './helpers.js';
import { matmulRef, Nd, reduce, sumOf, zip } from './ref.js';

interface Row {
  name: string;
  shapes: number[][];
  gpu: (...x: Tensor[]) => Tensor;
  ref: (...x: Nd[]) => Nd;
  positive?: boolean;
  tol?: { rtol?: number; atol?: number };
  gradTol?: { rtol?: number; atol?: number };
  noGrad?: boolean;
  /** Inputs to check gradients for (default: all). */
  wrt?: number[];
  /** Also run on the GPU kernel variants (the row hits a launch that differs between them). */
  variants?: boolean;
}

const addRef = (a: Nd, b: Nd) => zip((x, y) => x + y, a, b);
/** x[start:] of a 1-D Nd. */
const tail = (x: Nd, start: number) => Nd.from(x.data.slice(start), [x.size - start]);
const cols = (x: Nd, lo: number, hi: number) => {
  const [r, c] = x.shape;
  return Nd.from([...Array(r).keys()].flatMap((i) => [...x.data.slice(i * c + lo, i * c + hi)]), [r, hi - lo]);
};

const erf = (x: number) => {
  // High-precision series/continued fraction via the complementary error function is overkill here:
  // the Abramowitz-Stegun 7.1.26 error (1.5e-7) is far below the test tolerance.
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return Math.sign(x) * y;
};
const geluRef = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const lse = (v: number[]) => {
  const m = Math.max(...v);
  return m + Math.log(sumOf(v.map((x) => Math.exp(x - m))));
};
const T = (x: Nd) => x.permute([...x.shape.keys()].map((i, _, a) => (i >= a.length - 2 ? a.length * 2 - 3 - i : i)));

const rows: Row[] = [
  // elementwise, broadcasting, non-multiple-of-256 sizes
  { name: 'add broadcast', shapes: [[3, 1, 37], [5, 1]], gpu: ops.add, ref: (a, b) => zip((x, y) => x + y, a, b) },
  { name: 'sub', shapes: [[300], [300]], gpu: ops.sub, ref: (a, b) => zip((x, y) => x - y, a, b) },
  { name: 'mul broadcast', shapes: [[4, 7, 9], [7, 1]], gpu: ops.mul, ref: (a, b) => zip((x, y) => x * y, a, b) },
  { name: 'div', shapes: [[33, 5], [5]], gpu: ops.div, ref: (a, b) => zip((x, y) => x / y, a, b) },
  { name: 'add scalar', shapes: [[17]], gpu: (a) => ops.add(a, 2.5), ref: (a) => a.map((x) => x + 2.5) },
  { name: 'scalar div', shapes: [[17]], gpu: (a) => ops.div(3, a), ref: (a) => a.map((x) => 3 / x) },
  { name: 'neg', shapes: [[19]], gpu: ops.neg, ref: (a) => a.map((x) => -x) },
  { name: 'relu', shapes: [[513]], gpu: ops.relu, ref: (a) => a.map((x) => Math.max(x, 0)) },
  { name: 'gelu', shapes: [[2, 65]], gpu: ops.gelu, ref: (a) => a.map(geluRef), tol: { rtol: 1e-4, atol: 1e-6 } },
  { name: 'exp', shapes: [[40]], gpu: ops.exp, ref: (a) => a.map(Math.exp) },
  { name: 'log', shapes: [[40]], positive: true, gpu: ops.log, ref: (a) => a.map(Math.log) },
  { name: 'sqrt', shapes: [[40]], positive: true, gpu: ops.sqrt, ref: (a) => a.map(Math.sqrt) },
  { name: 'rsqrt', shapes: [[40]], positive: true, gpu: ops.rsqrt, ref: (a) => a.map((x) => 1 / Math.sqrt(x)) },
  { name: 'pow 3', shapes: [[40]], gpu: (a) => ops.pow(a, 3), ref: (a) => a.map((x) => x ** 3) },
  { name: 'pow 1 at zero', shapes: [[8]], gpu: (a) => ops.pow(ops.mul(a, ops.gt(a, 0)), 1), ref: (a) => a.map((x) => (x > 0 ? x : 0)) },
  { name: 'pow 0.5', shapes: [[40]], positive: true, gpu: (a) => ops.pow(a, 0.5), ref: (a) => a.map((x) => x ** 0.5) },
  { name: 'abs', shapes: [[40]], gpu: ops.abs, ref: (a) => a.map(Math.abs) },
  { name: 'clamp', shapes: [[60]], gpu: (a) => ops.clamp(a, -0.5, 0.7), ref: (a) => a.map((x) => Math.min(Math.max(x, -0.5), 0.7)) },
  {
    name: 'where',
    shapes: [[6, 5], [6, 5], [5]],
    gpu: (c, a, b) => ops.where(ops.gt(c, 0), a, b),
    wrt: [1, 2],
    ref: (c, a, b) => zip((x, y, z) => (x > 0 ? y : z), c, a, b),
  },
  // non-contiguous inputs (transposed views)
  { name: 'mul transposed', shapes: [[7, 9], [9, 7]], gpu: (a, b) => ops.mul(a.T, b), ref: (a, b) => zip((x, y) => x * y, T(a), b) },
  { name: 'exp of slice', shapes: [[10, 6]], gpu: (a) => ops.exp(a.slice(0, 1, 9, 2)), ref: (a) => Nd.from([0, 1, 2, 3].flatMap((r) => [...a.data.slice((1 + 2 * r) * 6, (2 + 2 * r) * 6)].map(Math.exp)), [4, 6]) },
  // the contiguous vec4 path and its scalar tail, scalar and broadcast operands, offsets not multiple of 4
  ...[1, 3, 4, 5, 1023, 4097].map((n): Row => ({ name: `add contiguous [${n}]`, shapes: [[n], [n]], gpu: ops.add, ref: addRef, variants: true })),
  { name: 'relu [4097]', shapes: [[4097]], gpu: ops.relu, ref: (a) => a.map((x) => Math.max(x, 0)), variants: true },
  { name: 'mul scalar [1023]', shapes: [[1023]], gpu: (a) => ops.mul(a, -1.5), ref: (a) => a.map((x) => -1.5 * x), variants: true },
  { name: 'where contiguous [5, 12]', shapes: [[5, 12], [5, 12], [5, 12]], gpu: (c, a, b) => ops.where(ops.gt(c, 0), a, b), wrt: [1, 2], ref: (c, a, b) => zip((x, y, z) => (x > 0 ? y : z), c, a, b), variants: true },
  { name: 'add per-row vector [7, 12] + [12]', shapes: [[7, 12], [12]], gpu: ops.add, ref: addRef, variants: true },
  { name: 'add per-row vector [37, 70] + [70]', shapes: [[37, 70], [70]], gpu: ops.add, ref: addRef, variants: true },
  { name: 'mul per-channel [2, 3, 4, 4] * [3, 1, 1]', shapes: [[2, 3, 4, 4], [3, 1, 1]], gpu: ops.mul, ref: (a, b) => zip((x, y) => x * y, a, b), variants: true },
  { name: 'mul per-channel [2, 3, 5] * [3, 1]', shapes: [[2, 3, 5], [3, 1]], gpu: ops.mul, ref: (a, b) => zip((x, y) => x * y, a, b), variants: true },
  { name: 'add a [1] tensor to [1023]', shapes: [[1023], [1]], gpu: ops.add, ref: addRef, variants: true },
  { name: 'add at offset 1 (scalar path)', shapes: [[1026], [1025]], gpu: (a, b) => ops.add(a.slice(0, 1), b), ref: (a, b) => addRef(tail(a, 1), b), variants: true },
  { name: 'add at offset 4 (vec4 path, tail)', shapes: [[1029], [1025]], gpu: (a, b) => ops.add(a.slice(0, 4), b), ref: (a, b) => addRef(tail(a, 4), b), variants: true },
  { name: 'exp of column window [6, 4:16]', shapes: [[6, 16]], gpu: (a) => ops.exp(a.slice(1, 4, 16)), ref: (a) => cols(a, 4, 16).map(Math.exp), variants: true },
  { name: 'exp of column window [9, 3:33]', shapes: [[9, 40]], gpu: (a) => ops.exp(a.slice(1, 3, 33)), ref: (a) => cols(a, 3, 33).map(Math.exp), variants: true },
  { name: 'mul transposed [33, 70]', shapes: [[33, 70], [70, 33]], gpu: (a, b) => ops.mul(a.T, b), ref: (a, b) => zip((x, y) => x * y, T(a), b), variants: true },
  // copies: clone's vec4 path and tail, offsets, strided sources
  ...[1, 3, 4, 5, 1023, 4097].map((n): Row => ({ name: `clone [${n}]`, shapes: [[n]], gpu: (a) => ops.clone(a), ref: (a) => a, variants: true })),
  { name: 'clone at offset 3', shapes: [[1030]], gpu: (a) => ops.clone(a.slice(0, 3)), ref: (a) => tail(a, 3), variants: true },
  { name: 'clone at offset 8', shapes: [[1030]], gpu: (a) => ops.clone(a.slice(0, 8)), ref: (a) => tail(a, 8), variants: true },
  { name: 'clone of column window [5, 4:20]', shapes: [[5, 24]], gpu: (a) => ops.clone(a.slice(1, 4, 20)), ref: (a) => cols(a, 4, 20), variants: true },
  { name: 'clone transposed [19, 70]', shapes: [[19, 70]], gpu: (a) => ops.clone(a.T), ref: (a) => T(a), variants: true },
  // reductions
  { name: 'sum all', shapes: [[7, 300]], gpu: (a) => ops.sum(a), ref: (a) => Nd.from([sumOf([...a.data])], []) },
  { name: 'sum axis 0', shapes: [[37, 5]], gpu: (a) => ops.sum(a, 0), ref: (a) => reduce(a, 0, sumOf, false) },
  { name: 'sum axes keepdim', shapes: [[3, 4, 5]], gpu: (a) => ops.sum(a, [0, 2], true), ref: (a) => reduce(reduce(a, 0, sumOf), 2, sumOf) },
  { name: 'mean last', shapes: [[6, 33]], gpu: (a) => ops.mean(a, -1), ref: (a) => reduce(a, 1, (v) => sumOf(v) / v.length, false) },
  { name: 'max axis 1', shapes: [[5, 300, 3]], gpu: (a) => ops.max(a, 1), ref: (a) => reduce(a, 1, (v) => Math.max(...v), false) },
  { name: 'logsumexp', shapes: [[9, 70]], gpu: (a) => ops.logsumexp(a, 1), ref: (a) => reduce(a, 1, lse, false) },
  { name: 'logsumexp axis 0', shapes: [[70, 9]], gpu: (a) => ops.logsumexp(a, 0), ref: (a) => reduce(a, 0, lse, false) },
  {
    name: 'var unbiased',
    shapes: [[8, 21]],
    gpu: (a) => ops.variance(a, 1),
    ref: (a) => reduce(a, 1, (v) => {
      const m = sumOf(v) / v.length;
      return sumOf(v.map((x) => (x - m) ** 2)) / (v.length - 1);
    }, false),
  },
  { name: 'sum of transposed', shapes: [[6, 11]], gpu: (a) => ops.sum(a.T, 1), ref: (a) => reduce(a, 0, sumOf, false) },
  // views
  { name: 'permute', shapes: [[2, 3, 4]], gpu: (a) => ops.mul(a.permute(2, 0, 1), 1), ref: (a) => a.permute([2, 0, 1]) },
  { name: 'reshape of transposed', shapes: [[4, 6]], gpu: (a) => a.T.reshape(3, 8), ref: (a) => T(a).reshape([3, 8]) },
  { name: 'expand', shapes: [[3, 1]], gpu: (a) => ops.mul(a.expand(2, 3, 4), 1), ref: (a) => zip((x) => x, a, Nd.zeros([2, 3, 4])) },
  // matmul
  { name: 'matmul 2d', shapes: [[67, 45], [45, 71]], gpu: ops.matmul, ref: matmulRef, tol: { rtol: 1e-4, atol: 1e-4 } },
  { name: 'matmul Aᵀ B', shapes: [[45, 67], [45, 30]], gpu: (a, b) => ops.matmul(a.T, b), ref: (a, b) => matmulRef(T(a), b), tol: { rtol: 1e-4, atol: 1e-4 } },
  { name: 'matmul A Bᵀ', shapes: [[20, 45], [33, 45]], gpu: (a, b) => ops.matmul(a, b.T), ref: (a, b) => matmulRef(a, T(b)), tol: { rtol: 1e-4, atol: 1e-4 } },
  { name: 'bmm', shapes: [[3, 17, 9], [3, 9, 70]], gpu: ops.matmul, ref: matmulRef, tol: { rtol: 1e-4, atol: 1e-4 } },
  { name: 'bmm broadcast rhs', shapes: [[2, 5, 17, 9], [9, 4]], gpu: ops.matmul, ref: (a, b) => matmulRef(a.reshape([170, 9]), b).reshape([2, 5, 17, 4]), tol: { rtol: 1e-4, atol: 1e-4 } },
  {
    name: 'linear',
    shapes: [[5, 3, 19], [7, 19], [7]],
    gpu: ops.linear,
    ref: (x, w, b) => zip((p, q) => p + q, matmulRef(x.reshape([15, 19]), T(w)).reshape([5, 3, 7]), b),
    tol: { rtol: 1e-4, atol: 1e-4 },
  },
];

async function checkRow(e: Engine, row: Row): Promise<void> {
  const rng = new Rng(row.name.length * 7919 + row.shapes.flat().reduce((a, b) => a + b, 0));
  const xs = row.shapes.map((s) => randNd(s, rng, { positive: row.positive }));
  const got = await e.scopeAsync(async () => fromGpu(row.gpu(...xs.map((x) => toGpu(e, x)))));
  expectClose(got, row.ref(...xs), row.tol, row.name);
  if (!row.noGrad) await gradcheck(e, xs, row.gpu, row.ref, { ...row.gradTol, wrt: row.wrt });
}

describe('ops against float64 references', async () => {
  const e = await engine();
  for (const row of rows) it(row.name, () => checkRow(e, row));
});

// Kernels with separate CPU-adapter and GPU variants: run the GPU variants here too.
describe('GPU kernel variants against float64 references', async () => {
  const e = await gpuVariantEngine();
  for (const row of rows.filter((r) => r.variants || /^(matmul|bmm|linear)/.test(r.name))) it(row.name, () => checkRow(e, row));
});
