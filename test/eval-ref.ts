// Float64 references and fixtures for the evaluators (test/eval.test.ts): brute-force weighted k-NN,
// clustered random data, in-memory and IDX data sets.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../engine/index.js';
import type { Dataset, Image } from '../hvp/data/types.js';

export interface KnnRef {
  /** Per test row: train indices of the k nearest, best first (ties to the lower index). */
  neighbours: Int32Array[];
  /** Per test row: similarity of the k-th minus that of the (k+1)-th neighbour (Infinity when N = k). */
  gap: Float64Array;
  predictions: Int32Array;
  /** Per test row: (best vote - second best vote) / best vote (1 when one class has all votes). */
  margin: Float64Array;
  /** Per test row: rank of the true label (0 = predicted; ties to the lower class). */
  ranks: Int32Array;
}

function normalisedRows(x: Float32Array, rows: number, dim: number, mean: Float64Array | null): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let d = 0; d < dim; d++) {
      const v = x[r * dim + d] - (mean ? mean[d] : 0);
      out[r * dim + d] = v;
      ss += v * v;
    }
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let d = 0; d < dim; d++) out[r * dim + d] *= inv;
  }
  return out;
}

export function knnRef(
  train: Float32Array,
  trainLabels: Int32Array,
  test: Float32Array,
  testLabels: Int32Array,
  dim: number,
  o: { k: number; temperature: number; numClasses: number; centre: boolean },
): KnnRef {
  const n = trainLabels.length;
  const m = testLabels.length;
  let mean: Float64Array | null = null;
  if (o.centre) {
    mean = new Float64Array(dim);
    for (let r = 0; r < n; r++) for (let d = 0; d < dim; d++) mean[d] += train[r * dim + d] / n;
  }
  const a = normalisedRows(train, n, dim, mean);
  const b = normalisedRows(test, m, dim, mean);
  const res: KnnRef = {
    neighbours: [],
    gap: new Float64Array(m),
    predictions: new Int32Array(m),
    margin: new Float64Array(m),
    ranks: new Int32Array(m),
  };
  for (let q = 0; q < m; q++) {
    const sims = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += a[r * dim + d] * b[q * dim + d];
      sims[r] = s;
    }
    const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => sims[j] - sims[i] || i - j);
    const nn = order.slice(0, o.k);
    res.neighbours.push(Int32Array.from(nn));
    res.gap[q] = n > o.k ? sims[order[o.k - 1]] - sims[order[o.k]] : Infinity;
    const votes = new Float64Array(o.numClasses);
    for (const i of nn) votes[trainLabels[i]] += Math.exp(sims[i] / o.temperature);
    const classes = Array.from({ length: o.numClasses }, (_, c) => c).sort((c, d) => votes[d] - votes[c] || c - d);
    res.predictions[q] = classes[0];
    res.margin[q] = o.numClasses > 1 ? (votes[classes[0]] - votes[classes[1]]) / votes[classes[0]] : 1;
    res.ranks[q] = classes.indexOf(testLabels[q]);
  }
  return res;
}

/** `count` points around `classes` random centres (spread 1) with noise `noise`, labels uniform. */
export function clustered(
  rng: Rng,
  count: number,
  dim: number,
  classes: number,
  noise: number,
  centres?: Float64Array,
): { x: Float32Array; labels: Int32Array; centres: Float64Array } {
  const c = centres ?? Float64Array.from({ length: classes * dim }, () => rng.normal());
  const x = new Float32Array(count * dim);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const y = rng.int(classes);
    labels[i] = y;
    for (let d = 0; d < dim; d++) x[i * dim + d] = c[y * dim + d] + noise * rng.normal() + 0.5;
  }
  return { x, labels, centres: c };
}

/** An in-memory dataset of random images (all `size`, or each its own size when sizes are given). */
export function memoryDataset(
  rng: Rng,
  n: number,
  channels: number,
  classes: number,
  size: [number, number] | null,
  sizes?: [number, number][],
): Dataset & { images: Image[] } {
  const images: Image[] = Array.from({ length: n }, (_, i) => {
    const [height, width] = size ?? sizes![i % sizes!.length];
    const pixels = Uint8Array.from({ length: channels * height * width }, () => rng.int(256));
    return { pixels, height, width, label: rng.int(classes) };
  });
  return {
    name: 'memory/train',
    length: n,
    channels,
    classes: Array.from({ length: classes }, (_, c) => `c${c}`),
    mean: Array.from({ length: channels }, (_, c) => 0.4 + 0.05 * c),
    std: Array.from({ length: channels }, (_, c) => 0.25 + 0.02 * c),
    ...(size ? { size } : {}),
    images,
    read: async (i: number) => images[i],
  };
}

/** What extractFeatures must feed the network: (p / 255 - mean) / std, float64. */
export function normalisedPixels(ds: Dataset & { images: Image[] }, pixels: (img: Image) => ArrayLike<number>): Float64Array {
  const out: number[] = [];
  for (const img of ds.images) {
    const p = pixels(img);
    const plane = p.length / ds.channels;
    for (let i = 0; i < p.length; i++) {
      const c = Math.floor(i / plane);
      out.push((p[i] / 255 - ds.mean[c]) / ds.std[c]);
    }
  }
  return Float64Array.from(out);
}

/** IDX files of clustered 8×8 grey images: class c is brighter in its own row band, plus noise. */
export async function idxDir(rng: Rng, dir: string): Promise<void> {
  for (const [split, n] of [['train', 60], ['t10k', 25]] as const) {
    const labels = Uint8Array.from({ length: n }, () => rng.int(4));
    const images = new Uint8Array(16 + n * 64);
    new DataView(images.buffer).setUint32(0, 0x803);
    [n, 8, 8].forEach((d, i) => new DataView(images.buffer).setUint32(4 + 4 * i, d));
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < 64; p++) images[16 + i * 64 + p] = Math.floor(p / 16) === labels[i] ? 150 + rng.int(100) : rng.int(100);
    }
    const lab = new Uint8Array(8 + n);
    new DataView(lab.buffer).setUint32(0, 0x801);
    new DataView(lab.buffer).setUint32(4, n);
    lab.set(labels, 8);
    await writeFile(join(dir, `${split}-images-idx3-ubyte`), images);
    await writeFile(join(dir, `${split}-labels-idx1-ubyte`), lab);
  }
}
