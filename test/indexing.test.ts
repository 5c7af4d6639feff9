// Indexing (indexSelect, gather, oneHot), joining and splitting (concat, stack, split, chunk) and
// dropout / drop-path, against float64 references; the indexing and joining backwards against finite
// differences. Dropout masks (forward and backward) are checked bit-for-bit against a BigInt
// Philox2x32-10 that is itself checked against the Random123 known-answer vectors.

import { describe, expect, it } from 'vitest';
import { ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { engine, gpuVariantEngine, expectClose, fromGpu, gradcheck, randNd, toGpu } from './helpers.js';
import { Nd } from './ref.js';

// ---------------------------------------------------------------- references

const clampIdx = (j: number, dim: number) => Math.min(Math.max(j, 0), dim - 1);

function indexSelectRef(x: Nd, axis: number, idx: number[]): Nd {
  const shape = [...x.shape];
  shape[axis] = idx.length;
  const out = Nd.zeros(shape);
  for (let i = 0; i < out.size; i++) {
    const c = out.index(i);
    c[axis] = clampIdx(idx[c[axis]], x.shape[axis]);
    out.data[i] = x.at(c);
  }
  return out;
}

function gatherRef(x: Nd, axis: number, idx: Nd): Nd {
  const out = Nd.zeros(idx.shape);
  for (let i = 0; i < out.size; i++) {
    const c = idx.index(i);
    c[axis] = clampIdx(idx.data[i], x.shape[axis]);
    out.data[i] = x.at(c);
  }
  return out;
}

function concatRef(xs: Nd[], axis: number): Nd {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  const out = Nd.zeros(shape);
  for (let i = 0; i < out.size; i++) {
    const c = out.index(i);
    let k = 0;
    while (c[axis] >= xs[k].shape[axis]) c[axis] -= xs[k++].shape[axis];
    out.data[i] = xs[k].at(c);
  }
  return out;
}

function stackRef(xs: Nd[], axis: number): Nd {
  return concatRef(xs.map((x) => x.reshape([...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)])), axis);
}

/** x[start:end] along axis. */
function sliceRef(x: Nd, axis: number, start: number, end: number): Nd {
  const shape = [...x.shape];
  shape[axis] = end - start;
  const out = Nd.zeros(shape);
  for (let i = 0; i < out.size; i++) {
    const c = out.index(i);
    c[axis] += start;
    out.data[i] = x.at(c);
  }
  return out;
}

const T2 = (x: Nd) => x.permute([1, 0]);

/** Philox2x32-10 (Random123), in BigInt: the float64-side reference for the GPU's random bits. */
function philox(c0: number, c1: number, key: number): [number, number] {
  let x = BigInt(c0);
  let y = BigInt(c1);
  let k = BigInt(key);
  for (let r = 0; r < 10; r++) {
    if (r > 0) k = (k + 0x9e3779b9n) & 0xffffffffn;
    const prod = x * 0xd256d193n;
    [x, y] = [(prod >> 32n) ^ k ^ y, prod & 0xffffffffn];
  }
  return [Number(x), Number(y)];
}

/** keep[u] for units 0..n-1, as the kernel decides it (stream 0: dropout, 1: dropPath). */
function keepMask(n: number, p: number, seed: number, stream: number): boolean[] {
  const threshold = Math.min(Math.round(p * 2 ** 32), 0xffffffff);
  return Array.from({ length: n }, (_, u) => philox(u, stream, seed)[0] >= threshold);
}

/** Copies differ from the float64 inputs only by their rounding to f32 (relative 2⁻²⁴). */
const COPY = { rtol: 1e-7, atol: 1e-30 };
/** x·(1/(1−p)) in f32 against x/(1−p) in float64: two roundings. */
const SCALED = { rtol: 1e-6, atol: 1e-30 };

const i32 = (e: Engine, data: number[], shape?: number[]) => e.tensor(data, shape, { dtype: 'i32' });

async function run(e: Engine, fn: () => Tensor): Promise<Nd> {
  return e.scopeAsync(async () => fromGpu(fn()));
}

/** |k − n·q| within 5 binomial standard deviations. */
function expectBinomial(k: number, n: number, q: number, label: string): void {
  const sigma = Math.sqrt(n * q * (1 - q));
  expect(Math.abs(k - n * q), `${label}: ${k} of ${n}, expected ${n * q} ± 5·${sigma.toFixed(1)}`).toBeLessThanOrEqual(5 * sigma);
}

// ---------------------------------------------------------------- indexing

describe('indexSelect / gather / oneHot', async () => {
  const e = await engine();
  const rng = new Rng(11);

  /** Forward against the reference, then backward against finite differences. */
  /** By default every input element is probed: a wrongly routed index-add may touch only a few. */
  async function check(xs: Nd[], gpu: (...t: Tensor[]) => Tensor, ref: (...x: Nd[]) => Nd, label: string, maxProbes = 1000) {
    expectClose(await run(e, () => gpu(...xs.map((x) => toGpu(e, x)))), ref(...xs), COPY, label);
    await gradcheck(e, xs, gpu, ref, { maxProbes });
  }

  it('indexSelect axis 0 with repeated and out-of-range (clamped) indices', async () => {
    const idx = [4, 1, 1, 3, 0, 4, 4, -3, 9];
    await check([randNd([5, 7], rng)], (x) => ops.indexSelect(x, 0, i32(e, idx)), (x) => indexSelectRef(x, 0, idx), 'axis 0');
  });

  it('indexSelect along a middle axis of a permuted input, with a strided index', async () => {
    const raw = [9, 2, 9, 5, 9, 2, 9, 0, 9, 5, 9, 5, 9, 1];
    const idx = raw.filter((_, i) => i % 2 === 1);
    await check(
      [randNd([6, 3, 4], rng)],
      (x) => ops.indexSelect(x.permute(1, 0, 2), 1, i32(e, raw).slice(0, 1, raw.length, 2)),
      (x) => indexSelectRef(x.permute([1, 0, 2]), 1, idx),
      'middle axis',
    );
  });

  it('indexSelect over more than one workgroup, gradient through a transposed output', async () => {
    const idx = Array.from({ length: 700 }, () => rng.int(300));
    const gpu = (x: Tensor) => ops.indexSelect(x, 0, i32(e, idx)).T;
    await check([randNd([300, 5], rng)], gpu, (x) => T2(indexSelectRef(x, 0, idx)), 'large', 64);
  });

  it('gather along a middle axis with repeats and a permuted (strided) index', async () => {
    // x [4, 6, 5], index [3, 8, 4]: 8 draws from 6 rows must repeat; two are out of range.
    const raw = Nd.from(Array.from({ length: 96 }, () => rng.int(6)), [4, 8, 3]);
    raw.data[5] = -1;
    raw.data[40] = 6;
    const idx = raw.permute([2, 1, 0]);
    await check(
      [randNd([4, 6, 5], rng)],
      (x) => ops.gather(x, 1, i32(e, [...raw.data], raw.shape).permute(2, 1, 0)),
      (x) => gatherRef(x, 1, idx),
      'gather middle',
    );
  });

  it('gather along the last axis with one index per row (cross-entropy pattern)', async () => {
    const idx = Nd.from(Array.from({ length: 37 }, () => rng.int(10)), [37, 1]);
    await check(
      [randNd([37, 10], rng)],
      (x) => ops.gather(x, -1, i32(e, [...idx.data], idx.shape)),
      (x) => gatherRef(x, 1, idx),
      'gather last',
    );
  });

  it('indexSelect and gather move i32 data exactly', async () => {
    const vals = [2 ** 31 - 1, -(2 ** 31), 5, 1];
    const got = await e.scopeAsync(async () => ops.indexSelect(i32(e, vals), 0, i32(e, [1, 0, 3, 1])).toArray());
    expect(got).toBeInstanceOf(Int32Array);
    expect([...got]).toEqual([vals[1], vals[0], vals[3], vals[1]]);
  });

  it('oneHot, with out-of-range labels as zero rows', async () => {
    const labels = [0, 3, 2, 7, -1, 1];
    const got = await run(e, () => ops.oneHot(i32(e, labels).reshape(2, 3), 4));
    const want = Nd.from(labels.flatMap((l) => [0, 1, 2, 3].map((c) => (c === l ? 1 : 0))), [2, 3, 4]);
    expectClose(got, want, COPY, 'oneHot');
  });

  it('rejects non-i32 indices and mismatched index shapes', async () => {
    await e.scopeAsync(async () => {
      const x = e.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      const f = e.tensor([0, 1]);
      expect(() => ops.indexSelect(x, 0, f)).toThrow(/indexSelect: index must be an i32 tensor/);
      expect(() => ops.gather(x, 1, f.reshape(2, 1))).toThrow(/gather: index must be an i32 tensor/);
      expect(() => ops.oneHot(f, 3)).toThrow(/oneHot: labels must be an i32/);
      expect(() => ops.gather(x, 1, i32(e, [0, 0, 0], [3, 1]))).toThrow(/gather: index \[3, 1\].*\[2, 3\]/);
      expect(() => ops.indexSelect(x, 0, i32(e, [0, 1], [1, 2]))).toThrow(/indexSelect: index must be 1-D/);
    });
  });
});

// ---------------------------------------------------------------- concat / stack / split

for (const variant of ['default', 'gpu'] as const) describe(`concat / stack / split (${variant} kernels)`, async () => {
  const e = await (variant === 'gpu' ? gpuVariantEngine() : engine());
  const rng = new Rng(23);

  async function check(xs: Nd[], gpu: (...t: Tensor[]) => Tensor, ref: (...x: Nd[]) => Nd, label: string) {
    expectClose(await run(e, () => gpu(...xs.map((x) => toGpu(e, x)))), ref(...xs), COPY, label);
    await gradcheck(e, xs, gpu, ref);
  }

  it('concat along axis 0, one input permuted', async () => {
    await check(
      [randNd([2, 3, 4], rng), randNd([3, 5, 4], rng), randNd([1, 3, 4], rng)],
      (a, b, c) => ops.concat([a, b.permute(1, 0, 2), c], 0),
      (a, b, c) => concatRef([a, b.permute([1, 0, 2]), c], 0),
      'concat 0',
    );
  });

  it('concat along a middle axis, one input transposed', async () => {
    await check(
      [randNd([2, 3, 4], rng), randNd([2, 1, 4], rng), randNd([2, 4, 5], rng)],
      (a, b, c) => ops.concat([a, b, c.transpose(1, 2)], 1),
      (a, b, c) => concatRef([a, b, c.permute([0, 2, 1])], 1),
      'concat 1',
    );
  });

  // Windows whose offsets and row lengths are multiples of 4 take the vec4 copy; the others, and the
  // tails of odd sizes, the scalar one.
  for (const [axis, shapes] of [
    [0, [[1], [3], [4], [5]]],
    [0, [[1023], [4097]]],
    [0, [[4, 8], [1, 8], [3, 8]]],
    [1, [[3, 8], [3, 4], [3, 12]]],
    [1, [[3, 5], [3, 3], [3, 70]]],
  ] as [number, number[][]][]) {
    it(`concat ${shapes.map((s) => `[${s}]`).join(' ')} along axis ${axis}`, async () => {
      await check(
        shapes.map((s) => randNd(s, rng)),
        (...ts) => ops.concat(ts, axis),
        (...xs) => concatRef(xs, axis),
        `concat ${axis}`,
      );
    });
  }

  it('concat of windows at offsets 1 and 4 of a larger tensor', async () => {
    await check(
      [randNd([1030], rng), randNd([6, 16], rng)],
      (a, b) => ops.concat([a.slice(0, 1, 9), a.slice(0, 4, 12), b.slice(1, 4, 12).reshape(-1)], 0),
      (a, b) => Nd.from([...a.data.slice(1, 9), ...a.data.slice(4, 12), ...b.data.filter((_, i) => i % 16 >= 4 && i % 16 < 12)], [64]),
      'concat windows',
    );
  });

  it('slice backward writes the gradient into its window (offsets 1 and 4, a step, a middle axis)', async () => {
    for (const [lo, hi, step] of [[1, 1024, 1], [4, 1028, 1], [3, 1030, 2]]) {
      await check(
        [randNd([1031], rng)],
        (a) => ops.mul(a.slice(0, lo, hi, step), 2),
        (a) => Nd.from([...a.data].filter((_, i) => i >= lo && i < hi && (i - lo) % step === 0).map((v) => 2 * v), [Math.ceil((hi - lo) / step)]),
        `slice ${lo}:${hi}:${step}`,
      );
    }
    await check(
      [randNd([3, 20, 5], rng)],
      (a) => ops.mul(a.slice(1, 4, 16), 2),
      (a) => Nd.from([...a.data].filter((_, i) => Math.floor(i / 5) % 20 >= 4 && Math.floor(i / 5) % 20 < 16).map((v) => 2 * v), [3, 12, 5]),
      'slice middle axis',
    );
  });

  it('concat of i32 tensors is exact', async () => {
    const got = await e.scopeAsync(async () => ops.concat([i32(e, [2 ** 31 - 1, 1]), i32(e, [-(2 ** 31)])]).toArray());
    expect([...got]).toEqual([2 ** 31 - 1, 1, -(2 ** 31)]);
  });

  for (const axis of [0, 1, -1]) {
    it(`stack along axis ${axis}, one input transposed`, async () => {
      const a = axis < 0 ? 2 : axis;
      await check(
        [randNd([3, 4], rng), randNd([4, 3], rng), randNd([3, 4], rng)],
        (x, y, z) => ops.stack([x, y.T, z], axis),
        (x, y, z) => stackRef([x, T2(y), z], a),
        `stack ${axis}`,
      );
    });
  }

  it('split by sizes along axis 0, an unused piece getting zero gradient', async () => {
    const x = randNd([7, 5], rng);
    const got = await e.scopeAsync(async () => Promise.all(ops.split(toGpu(e, x), [2, 4, 1], 0).map(fromGpu)));
    [[0, 2], [2, 6], [6, 7]].forEach(([s, t], k) => expectClose(got[k], sliceRef(x, 0, s, t), COPY, `piece ${k}`));
    await gradcheck(
      e,
      [x],
      (t) => {
        const [p0, , p2] = ops.split(t, [2, 4, 1], 0);
        return ops.concat([p2, p0], 0);
      },
      (t) => concatRef([sliceRef(t, 0, 6, 7), sliceRef(t, 0, 0, 2)], 0),
    );
  });

  it('split by piece size and chunk along axis 1 of a transposed input', async () => {
    const x = randNd([5, 7], rng);
    const pieces = (t: Nd) => [sliceRef(t, 1, 0, 2), sliceRef(t, 1, 2, 4), sliceRef(t, 1, 4, 5)];
    for (const fn of [(t: Tensor) => ops.split(t.T, 2, 1), (t: Tensor) => ops.chunk(t.T, 3, 1)]) {
      const got = await e.scopeAsync(async () => Promise.all(fn(toGpu(e, x)).map(fromGpu)));
      expect(got.length).toBe(3);
      pieces(T2(x)).forEach((want, k) => expectClose(got[k], want, COPY, `piece ${k}`));
      await gradcheck(e, [x], (t) => ops.concat(fn(t).reverse(), 1), (t) => concatRef(pieces(T2(t)).reverse(), 1));
    }
  });

  it('errors name the op and every shape', async () => {
    await e.scopeAsync(async () => {
      const a = e.zeros([2, 3]);
      const b = e.zeros([2, 4]);
      const c = e.zeros([3, 3]);
      expect(() => ops.concat([a, b, c], 0)).toThrow(/concat: shapes \[2, 3\], \[2, 4\], \[3, 3\]/);
      expect(() => ops.stack([a, b], 0)).toThrow(/stack: shapes \[2, 3\], \[2, 4\]/);
      expect(() => ops.concat([a, i32(e, [1, 2, 3, 4, 5, 6], [2, 3])], 0)).toThrow(/concat: inputs mix dtypes/);
      expect(() => ops.split(a, [1, 1], 1)).toThrow(/split: sizes \[1, 1\] sum to 2, but axis 1 of \[2, 3\] has 3/);
    });
  });
});

// ---------------------------------------------------------------- dropout / dropPath

describe('dropout / dropPath', async () => {
  const e = await engine();
  const rng = new Rng(37);

  it('Philox2x32-10 reference matches the Random123 known-answer vectors', () => {
    expect(philox(0, 0, 0)).toEqual([0xff1dae59, 0x6cd10df2]);
    expect(philox(0xffffffff, 0xffffffff, 0xffffffff)).toEqual([0x2c3f628b, 0xab4fd7ad]);
    expect(philox(0x243f6a88, 0x85a308d3, 0x13198a2e)).toEqual([0xdd7ce038, 0xf62a4c12]);
  });

  it('keeps 1-p of 1e5 elements, survivors x/(1-p), mask as the reference generator', async () => {
    const n = 100_000;
    const p = 0.3;
    const x = randNd([n], rng);
    const seed = rng.u32();
    const out = await run(e, () => ops.dropout(toGpu(e, x), p, seed));
    const keep = keepMask(n, p, seed, 0);
    const kept = out.data.filter((v) => v !== 0).length;
    const wrong = keep.findIndex((k, i) => k !== (out.data[i] !== 0));
    expect(wrong, 'first element whose keep/drop differs from the reference').toBe(-1);
    expectBinomial(kept, n, 1 - p, 'kept');
    const want = x.map((v, i) => (keep[i] ? Math.fround(v) / (1 - p) : 0));
    expectClose(out, want, SCALED, 'survivors');
  });

  it('the same seed repeats the mask; another seed draws an independent one', async () => {
    const n = 20_000;
    const p = 0.5;
    const x = randNd([n], rng);
    const [s1, s2] = [rng.u32(), rng.u32()];
    const [a, b, c] = await e.scopeAsync(async () => {
      const t = toGpu(e, x);
      return Promise.all([s1, s1, s2].map((s) => fromGpu(ops.dropout(t, p, s))));
    });
    expect([...a.data]).toEqual([...b.data]);
    let both = 0;
    for (let i = 0; i < n; i++) if (a.data[i] !== 0 && c.data[i] !== 0) both++;
    // Independent masks keep a given element in both with probability (1-p)²; equal masks would give 1-p.
    expectBinomial(both, n, (1 - p) ** 2, 'kept by both seeds');
  });

  it('gradient is the mask/(1-p) pattern (non-contiguous input, odd size)', async () => {
    const p = 0.4;
    const seed = rng.u32();
    const x = randNd([37, 29], rng);
    const g = randNd([29, 37], rng);
    const [out, grad] = await e.scopeAsync(async () => {
      const t = toGpu(e, x, true);
      const y = ops.dropout(t.T, p, seed);
      y.backward(toGpu(e, g));
      return [await fromGpu(y), await fromGpu(t.grad!)];
    });
    const keep = keepMask(29 * 37, p, seed, 0);
    expectClose(out, T2(x).map((v, i) => (keep[i] ? Math.fround(v) / (1 - p) : 0)), SCALED, 'forward');
    const want = T2(g.map((v, i) => (keep[i] ? Math.fround(v) / (1 - p) : 0)));
    expectClose(grad, want, SCALED, 'gradient');
  });

  it('p = 0 and eval mode return the input; p = 1 zeroes everything; bad p or seed throws', async () => {
    await e.scopeAsync(async () => {
      const x = toGpu(e, randNd([10], rng));
      expect(ops.dropout(x, 0, 1)).toBe(x);
      expect(ops.dropout(x, 0.5, 1, false)).toBe(x);
      expect(ops.dropPath(x, 0, 1)).toBe(x);
      expect(ops.dropPath(x, 0.5, 1, false)).toBe(x);
      expect([...(await ops.dropout(x, 1, 3).toArray())]).toEqual(new Array(10).fill(0));
      expect(() => ops.dropout(x, 1.5, 1)).toThrow(/dropout: p must be in \[0, 1\]/);
      expect(() => ops.dropout(x, 0.5, -1)).toThrow(/dropout: seed must be a u32/);
    });
  });

  it('dropPath zeroes whole samples, scales the rest, and masks the gradient alike', async () => {
    const [b, p] = [1000, 0.25];
    const seed = rng.u32();
    const x = randNd([b, 2, 3], rng);
    const g = randNd([b, 2, 3], rng);
    const [out, grad] = await e.scopeAsync(async () => {
      const t = toGpu(e, x, true);
      const y = ops.dropPath(t, p, seed);
      y.backward(toGpu(e, g));
      return [await fromGpu(y), await fromGpu(t.grad!)];
    });
    const keep = keepMask(b, p, seed, 1);
    expectBinomial(keep.filter((k) => k).length, b, 1 - p, 'kept samples');
    const scaled = (v: Nd) => v.map((w, i) => (keep[Math.floor(i / 6)] ? Math.fround(w) / (1 - p) : 0));
    // Whole samples: each sample's six outputs are all zero or all nonzero (x is never zero).
    for (let s = 0; s < b; s++) {
      const zeros = [...out.data.slice(s * 6, s * 6 + 6)].filter((v) => v === 0).length;
      expect(zeros === 0 || zeros === 6, `sample ${s} has ${zeros} zeros`).toBe(true);
    }
    expectClose(out, scaled(x), SCALED, 'forward');
    expectClose(grad, scaled(g), SCALED, 'gradient');
  });
});
