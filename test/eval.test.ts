// Evaluation (hvp/eval): k-NN against a float64 brute force on clustered random data (both top-k
// kernel variants, several sizes, train features in several row blocks, exact ties), the linear
// probe on separable data, feature extraction against a CPU forward of the same backbone, and the
// checkpoint loader and `hvp eval` CLI on a tiny ResNet.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng, io, nn, type Engine, type Tensor } from '../engine/index.js';
import { knnClassify, nearestNeighbours } from '../hvp/eval/knn.js';
import { linearProbe } from '../hvp/eval/linear-probe.js';
import { extractFeatures, rawPixelFeatures } from '../hvp/eval/features.js';
import { loadBackbone, randomBackbone } from '../hvp/eval/backbone.js';
import { resizeCenterCrop } from '../hvp/eval/resize.js';
import { resnet18 } from '../models/resnet.js';
import { evalMain } from '../cli/eval.js';
import { firstN, openDataset, subset } from '../hvp/data/open.js';
import { saveCheckpoint } from '../models/checkpoint.js';
import { engine, expectClose, gpuVariantEngine } from './helpers.js';
import { Nd } from './ref.js';
import { clustered, idxDir, knnRef, memoryDataset, normalisedPixels } from './eval-ref.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hvp-eval-'));
  dirs.push(d);
  return d;
}

/** Upload rows as blocks of the given sizes (a FeatureRows of several tensors). */
function blocks(e: Engine, x: Float32Array, dim: number, sizes: number[]): Tensor[] {
  let at = 0;
  return sizes.map((n) => {
    const t = e.tensor(x.subarray(at * dim, (at + n) * dim), [n, dim]);
    at += n;
    return t;
  });
}

const KNN_CASES = [
  { name: 'N=300 M=77 F=16 k=20, one block', n: 300, m: 77, dim: 16, k: 20, classes: 10, blocks: [300], centre: true },
  { name: 'N=257 M=65 F=9 k=5, three blocks', n: 257, m: 65, dim: 9, k: 5, classes: 4, blocks: [100, 1, 156], centre: false },
  { name: 'N=130 M=33 F=24 k=64, two blocks', n: 130, m: 33, dim: 24, k: 64, classes: 7, blocks: [63, 67], centre: true },
  { name: 'N=41 M=19 F=3 k=1', n: 41, m: 19, dim: 3, k: 1, classes: 3, blocks: [41], centre: false },
];

describe.each([
  ['per-row invocation (CPU variant)', engine],
  ['workgroup per row (GPU variant)', gpuVariantEngine],
])('knnClassify, %s', (_variant, getEngine) => {
  it.each(KNN_CASES)('$name matches the float64 brute force', async (c) => {
    const e = await getEngine();
    const rng = new Rng(c.n * 31 + c.k);
    const noise = 0.9;
    const tr = clustered(rng, c.n, c.dim, c.classes, noise);
    const te = clustered(rng, c.m, c.dim, c.classes, noise, tr.centres);
    const o = { k: c.k, temperature: 0.07, numClasses: c.classes, centre: c.centre };
    const ref = knnRef(tr.x, tr.labels, te.x, te.labels, c.dim, o);

    const trainF = blocks(e, tr.x, c.dim, c.blocks);
    const testF = blocks(e, te.x, c.dim, [c.m]);
    const res = await knnClassify(e, { features: trainF, labels: tr.labels }, { features: testF, labels: te.labels }, o);
    expect(res.predictions.length).toBe(c.m);

    // f32 similarities may swap neighbours whose float64 similarities nearly tie: compare only clear rows.
    let checked = 0;
    let hits = 0;
    let rankChecked = 0;
    for (let q = 0; q < c.m; q++) {
      if (ref.margin[q] > 1e-3 && ref.gap[q] > 1e-5) {
        checked++;
        expect(res.predictions[q], `row ${q}`).toBe(ref.predictions[q]);
      }
      if (ref.predictions[q] === te.labels[q]) hits++;
      if (ref.gap[q] > 1e-5) rankChecked++;
    }
    expect(checked).toBeGreaterThan(c.m * 0.8);
    expect(Math.abs(res.top1 - hits / c.m)).toBeLessThanOrEqual((c.m - checked) / c.m);
    expect(res.top1).toBeGreaterThan(0.2); // the clusters are learnable: the test cannot pass on noise
    if (c.classes > 5) {
      const top5 = ref.ranks.filter((r) => r < 5).length / c.m;
      expect(Math.abs(res.top5! - top5)).toBeLessThanOrEqual((c.m - rankChecked + 1) / c.m);
    } else {
      expect(res.top5).toBeUndefined();
    }

    // The neighbour lists themselves, on centred-or-not unit rows built the same way.
    const mean = new Float64Array(c.dim);
    if (c.centre) for (let r = 0; r < c.n; r++) for (let d = 0; d < c.dim; d++) mean[d] += tr.x[r * c.dim + d] / c.n;
    const unit = (x: Float32Array, rows: number) => {
      const out = new Float32Array(x.length);
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let d = 0; d < c.dim; d++) ss += (x[r * c.dim + d] - mean[d]) ** 2;
        for (let d = 0; d < c.dim; d++) out[r * c.dim + d] = (x[r * c.dim + d] - mean[d]) / Math.sqrt(ss);
      }
      return out;
    };
    const trainU = blocks(e, unit(tr.x, c.n), c.dim, c.blocks);
    const query = e.tensor(unit(te.x, c.m), [c.m, c.dim]);
    const { values, indices } = nearestNeighbours(trainU, query, c.k);
    const idx = await indices.toArray();
    const val = await values.toArray();
    for (let q = 0; q < c.m; q++) {
      for (let j = 1; j < c.k; j++) expect(val[q * c.k + j - 1]).toBeGreaterThanOrEqual(val[q * c.k + j]);
      if (ref.gap[q] <= 1e-5) continue;
      const got = [...idx.subarray(q * c.k, (q + 1) * c.k)].sort((a, b) => a - b);
      expect(got, `neighbours of row ${q}`).toEqual([...ref.neighbours[q]].sort((a, b) => a - b));
    }
    for (const t of [...trainF, ...testF, ...trainU, query, values, indices]) t.dispose();
  });

  it('breaks ties: equal similarities to the lower train index, equal votes to the lower class', async () => {
    const e = await getEngine();
    // Train 0 and 1 are the same point with labels 5 and 2: with k = 1 the lower index (label 5) wins.
    // Test [1, 1] is equally similar to [1, 0] (label 3) and [0, 1] (label 1): with k = 2 the votes tie
    // exactly and the lower class (1) wins, although label 3 comes first in the train set.
    const train = e.tensor([0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, -1, -1, -1], [5, 3]);
    const trainLabels = Int32Array.from([5, 2, 3, 1, 0]);
    // Test rows: along train 0/1; halfway between train 2 and 3; along train 0/1 again, labelled 2.
    const test = e.tensor([0, 0, 1, 2, 2, 0, 0, 0, 3], [3, 3]);
    const testLabels = Int32Array.from([5, 1, 2]);
    const k1 = await knnClassify(e, { features: train, labels: trainLabels }, { features: test, labels: testLabels }, { k: 1, numClasses: 6 });
    expect([...k1.predictions]).toEqual([5, 3, 5]);
    const k2 = await knnClassify(e, { features: train, labels: trainLabels }, { features: test, labels: testLabels }, { k: 2, numClasses: 6 });
    // Row 0: train 0 and 1 (sim 1, labels 5 and 2) tie in votes -> 2. Row 1: train 2 and 3 -> 1.
    expect([...k2.predictions]).toEqual([2, 1, 2]);
    expect(k2.top1).toBeCloseTo(2 / 3, 6);
    // Top-5 with 6 classes: row 0's label 5 has rank 1 (after 2); every true label is within the top 5.
    expect(k2.top5).toBe(1);
    train.dispose();
    test.dispose();
  });
});

describe('knnClassify errors', () => {
  it('names what to change', async () => {
    const e = await engine();
    const x = e.tensor([1, 2, 3, 4], [2, 2]);
    const y = e.tensor([1, 2, 3], [1, 3]);
    const l2 = Int32Array.from([0, 1]);
    await expect(knnClassify(e, { features: x, labels: l2 }, { features: x, labels: l2 }, { k: 3, numClasses: 2 })).rejects.toThrow(/k = 3 exceeds the 2 train/);
    await expect(knnClassify(e, { features: x, labels: l2 }, { features: y, labels: Int32Array.from([0]) }, { numClasses: 2, k: 1 })).rejects.toThrow(/2 columns, test features 3/);
    await expect(knnClassify(e, { features: x, labels: Int32Array.from([0, 2]) }, { features: x, labels: l2 }, { numClasses: 2, k: 1 })).rejects.toThrow(/train label 2 at 1/);
    await expect(knnClassify(e, { features: x, labels: l2 }, { features: x, labels: l2 }, { numClasses: 2, k: 65 })).rejects.toThrow(/\[1, 64\]/);
    x.dispose();
    y.dispose();
  });
});

describe('linearProbe', () => {
  const setup = (seed: number) => {
    // Well separated clusters with wildly different column scales (standardisation makes them one).
    const rng = new Rng(seed);
    const dim = 6;
    const tr = clustered(rng, 203, dim, 4, 0.15);
    const te = clustered(rng, 61, dim, 4, 0.15, tr.centres);
    for (const x of [tr.x, te.x]) for (let i = 0; i < x.length; i++) x[i] *= 10 ** ((i % dim) - 2);
    return { tr, te, dim };
  };

  it('separates linearly separable clusters, deterministically for a seed', async () => {
    const e = await engine();
    const { tr, te, dim } = setup(5);
    const trainF = blocks(e, tr.x, dim, [120, 83]);
    const testF = blocks(e, te.x, dim, [61]);
    const opts = { numClasses: 4, epochs: 15, lr: 0.1, batch: 32, weightDecay: 1e-4, seed: 3 };
    const a = await linearProbe(e, trainF, tr.labels, testF, te.labels, opts);
    expect(a.trainTop1).toBeGreaterThanOrEqual(0.99);
    expect(a.top1).toBeGreaterThanOrEqual(0.98);
    const b = await linearProbe(e, trainF, tr.labels, testF, te.labels, opts);
    expect(b).toEqual(a);
    // Nearly no training (one step at a tiny rate) leaves the seeded random classifier near chance.
    const c = await linearProbe(e, trainF, tr.labels, testF, te.labels, { ...opts, epochs: 1, lr: 1e-6, batch: 256 });
    expect(c.trainTop1).toBeLessThan(0.8);
    for (const t of [...trainF, ...testF]) t.dispose();
  });

  it('names what to change', async () => {
    const e = await engine();
    const x = e.tensor([1, 2, 3, 4], [2, 2]);
    const l = Int32Array.from([0, 1]);
    await expect(linearProbe(e, x, l, x, Int32Array.from([0, 3]), { numClasses: 2 })).rejects.toThrow(/test label 3 at 1/);
    await expect(linearProbe(e, x, l, x, l, { numClasses: 2, epochs: 0 })).rejects.toThrow(/epochs must be a positive integer/);
    x.dispose();
  });
});

describe('features', () => {
  const tiny = (e: Engine, inChannels: number) =>
    randomBackbone(e, 'resnet18', { inChannels, smallImage: true, widths: [4, 8, 8, 8] }, 11);

  it('extractFeatures equals one forward of the normalised images, across batches and row blocks', async () => {
    const e = await engine();
    const ds = memoryDataset(new Rng(1), 23, 3, 5, [8, 8]);
    const bb = tiny(e, 3);
    const feats = await extractFeatures(e, bb, ds, { batch: 7, blockRows: 10 });
    expect(feats.map((t) => t.shape)).toEqual([[10, 8], [10, 8], [3, 8]]);
    const x = normalisedPixels(ds, (img) => img.pixels);
    const want = await e.scope(() => e.noGrad(() => bb.features(e.tensor(Float32Array.from(x), [23, 3, 8, 8])))).toArray();
    const got = (await Promise.all(feats.map((t) => t.toArray()))).flatMap((a) => [...a]);
    expectClose(got, Nd.from(want, [23, 8]), { rtol: 1e-4, atol: 1e-5 });
    for (const t of feats) t.dispose();
  });

  it('rawPixelFeatures gives the normalised pixels, with the statistics given', async () => {
    const e = await engine();
    const ds = memoryDataset(new Rng(2), 13, 2, 3, [5, 3]);
    const feats = await rawPixelFeatures(e, ds, { blockRows: 4 });
    expect(feats.map((t) => t.shape)).toEqual([[4, 30], [4, 30], [4, 30], [1, 30]]);
    const got = (await Promise.all(feats.map((t) => t.toArray()))).flatMap((a) => [...a]);
    expectClose(got, Nd.from(normalisedPixels(ds, (img) => img.pixels), [13, 30]));
    const other = { mean: [0.1, 0.2], std: [0.5, 0.6] };
    const feats2 = await rawPixelFeatures(e, ds, { normalize: other });
    const first = await feats2[0].toArray();
    expect(first[0]).toBeCloseTo((ds.images[0].pixels[0] / 255 - 0.1) / 0.5, 5);
    for (const t of [...feats, ...feats2]) t.dispose();
  });

  it('resizes (antialiased bilinear) and centre-crops images of mixed sizes', async () => {
    // Reference: PIL's triangle filter written as a direct 2-D sum over every input pixel, float64.
    const [h, w] = [20, 40];
    const rng = new Rng(9);
    const pixels = Uint8Array.from({ length: 2 * h * w }, () => rng.int(256));
    const out = resizeCenterCrop({ pixels, height: h, width: w, label: 0 }, 2, 8);
    // Shorter side 20 -> floor(8 / 0.875) = 9, longer 40 -> 18; crop offsets round(0.5) = 0 (half to even) and 5.
    const weights = (inSize: number, outSize: number, o: number) => {
      const scale = inSize / outSize;
      const support = Math.max(scale, 1);
      const c = (o + 0.5) * scale;
      const wts = Array.from({ length: inSize }, (_, i) => Math.max(0, 1 - Math.abs((i + 0.5 - c) / support)));
      const total = wts.reduce((a, b) => a + b);
      return wts.map((v) => v / total);
    };
    const want = new Float64Array(2 * 64);
    for (let c = 0; c < 2; c++) {
      for (let y = 0; y < 8; y++) {
        const wy = weights(h, 9, y);
        for (let x = 0; x < 8; x++) {
          const wx = weights(w, 18, 5 + x);
          let v = 0;
          for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) v += wy[i] * wx[j] * pixels[c * h * w + i * w + j];
          want[c * 64 + y * 8 + x] = v;
        }
      }
    }
    expectClose(out, new Nd(want, [2, 8, 8]), { rtol: 1e-5, atol: 1e-4 });
    // Upsampling a 4x4 image: plain bilinear with half-pixel centres (here edge 9, crop offset 0).
    const small = Uint8Array.from({ length: 16 }, (_, i) => 10 * (i % 4) + 40 * Math.floor(i / 4));
    const up = resizeCenterCrop({ pixels: small, height: 4, width: 4, label: 0 }, 1, 8);
    const s = 4 / 9;
    const at = (o: number) => Math.min(Math.max((o + 0.5) * s - 0.5, 0), 3);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(up[y * 8 + x]).toBeCloseTo(10 * at(x) + 40 * at(y), 3);
  });

  it('feeds resized crops of mixed-size images to the backbone', async () => {
    const e = await engine();
    const ds = memoryDataset(new Rng(3), 5, 1, 2, null, [[9, 12], [14, 8], [8, 8]]);
    const bb = tiny(e, 1);
    const feats = await extractFeatures(e, bb, ds, { batch: 2, size: 8 });
    const x = normalisedPixels(ds, (img) => resizeCenterCrop(img, 1, 8));
    const want = await e.scope(() => e.noGrad(() => bb.features(e.tensor(Float32Array.from(x), [5, 1, 8, 8])))).toArray();
    expectClose(await feats[0].toArray(), Nd.from(want, [5, 8]), { rtol: 1e-4, atol: 1e-5 });
    feats[0].dispose();
    await expect(extractFeatures(e, tiny(e, 3), ds, { size: 8 })).rejects.toThrow(/1-channel images but the backbone takes 3/);
  });
});

describe('loadBackbone', () => {
  class Student extends nn.Module {
    constructor(readonly backbone: nn.Module, readonly projector: nn.Module) {
      super();
      this.registerModule('backbone', backbone);
      this.registerModule('projector', projector);
    }
  }

  it('loads the student backbone of a checkpoint, or a bare export with --arch', async () => {
    const e = await engine();
    const dir = await tempDir();
    const rng = new Rng(4);
    const net = resnet18(e, { inChannels: 1, smallImage: true, widths: [4, 8, 8, 8], numClasses: 0 }, rng);
    const model = new Student(net, new nn.Linear(e, 8, 3, rng));
    const ckpt = join(dir, 'ckpt.safetensors');
    await saveCheckpoint(ckpt, { model, meta: { arch: 'resnet18', method: 'simsiam', epoch: 1, step: 10, config: {} } });
    const x = e.tensor(Float32Array.from({ length: 2 * 64 }, () => rng.normal()), [2, 1, 8, 8]);
    net.eval();
    const want = await e.scope(() => e.noGrad(() => net.forward(x))).toArray();

    const loaded = await loadBackbone(e, { checkpoint: ckpt });
    expect(loaded.arch).toBe('resnet18');
    expect(loaded.prefix).toBe('backbone.');
    expect(loaded.backbone.inChannels).toBe(1);
    expect(loaded.backbone.module.parameters().every((p) => !p.requiresGrad)).toBe(true);
    expect([...(await e.scope(() => e.noGrad(() => loaded.backbone.features(x))).toArray())]).toEqual([...want]);

    const bare = join(dir, 'bare.safetensors');
    await writeFile(bare, await io.moduleToSafetensors(net));
    await expect(loadBackbone(e, { checkpoint: bare })).rejects.toThrow(/records no architecture.*--arch/);
    const fromBare = await loadBackbone(e, { checkpoint: bare, arch: 'resnet18' });
    expect(fromBare.prefix).toBe('');
    expect([...(await e.scope(() => e.noGrad(() => fromBare.backbone.features(x))).toArray())]).toEqual([...want]);

    await expect(loadBackbone(e, { checkpoint: ckpt, prefix: 'teacher.' })).rejects.toThrow(/no backbone tensors under the prefix 'teacher\.'.*backbone\., projector\./);
    await expect(loadBackbone(e, { checkpoint: join(dir, 'missing.safetensors') })).rejects.toThrow(/cannot be read \(ENOENT\).*--checkpoint/);
    await expect(loadBackbone(e, { checkpoint: ckpt, arch: 'resnet9' })).rejects.toThrow(/unknown --arch 'resnet9'/);
    x.dispose();
  });
});

describe('hvp eval', () => {
  it('k-NN and linear probe of a checkpoint, raw pixels and a random init, with clear errors', async () => {
    const e = await engine();
    const dir = await tempDir();
    const rng = new Rng(12);
    await idxDir(rng, dir);
    const net = resnet18(e, { inChannels: 1, smallImage: true, widths: [4, 8, 8, 8], numClasses: 0 }, rng);
    const ckpt = join(dir, 'ckpt.safetensors');
    await saveCheckpoint(ckpt, { model: net, meta: { arch: 'resnet18', method: 'simsiam', epoch: 0, step: 0, config: {} } });
    const data = ['--data', dir, '--dataset', 'fashion-mnist'];
    const out = join(dir, 'result.json');

    const knn = (await evalMain(['knn', '--checkpoint', ckpt, ...data, '--k', '5', '--train-limit', '50', '--batch', '16', '--out', out], e))!;
    // The same pipeline by hand: train-split statistics for both splits, the first 50 train images.
    const train = await openDataset({ kind: 'fashion-mnist', dir, split: 'train' });
    const test = await openDataset({ kind: 'fashion-mnist', dir, split: 'test' });
    net.eval();
    const bb = { module: net, features: (x: Tensor) => net.forward(x), featureDim: 8, inChannels: 1 };
    const trainLabels = Int32Array.from((train as unknown as { labels: Uint8Array }).labels.subarray(0, 50));
    const testLabels = Int32Array.from((test as unknown as { labels: Uint8Array }).labels);
    const trF = await extractFeatures(e, bb, subset(train, firstN(train, 50)), { normalize: train });
    const teF = await extractFeatures(e, bb, test, { normalize: train });
    const want = await knnClassify(e, { features: trF, labels: trainLabels }, { features: teF, labels: testLabels }, { k: 5, numClasses: 10 });
    expect(knn).toMatchObject({ method: 'knn', features: 'backbone', arch: 'resnet18', prefix: '', train: 50, test: 25, k: 5, centre: false, top1: want.top1 });
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ top1: want.top1, checkpoint: ckpt });
    for (const t of [...trF, ...teF]) t.dispose();

    // Raw pixels separate these classes well; centred by default.
    const raw = (await evalMain(['knn', '--features', 'raw', ...data, '--k', '3'], e))!;
    expect(raw).toMatchObject({ features: 'raw', centre: true, train: 60, test: 25 });
    expect(raw.top1 as number).toBeGreaterThanOrEqual(0.9);
    const lin = (await evalMain(['linear', '--features', 'raw', ...data, '--epochs', '10', '--probe-batch', '16', '--lr', '0.05'], e))!;
    expect(lin.top1 as number).toBeGreaterThanOrEqual(0.9);
    expect(lin.train_top1 as number).toBeGreaterThanOrEqual(0.95);
    const rnd = (await evalMain(['knn', '--random-init', '--arch', 'resnet18', '--small-image', '--widths', '4,8,8,8', ...data, '--test-limit', '7'], e))!;
    expect(rnd).toMatchObject({ features: 'random-init', test: 7 });

    await expect(evalMain(['knn', '--checkpoint', join(dir, 'nope.safetensors'), ...data], e)).rejects.toThrow(/nope\.safetensors cannot be read.*--checkpoint/);
    await expect(evalMain(['knn', '--random-init', ...data], e)).rejects.toThrow(/--random-init needs --arch/);
    await expect(evalMain(['knn', ...data], e)).rejects.toThrow(/exactly one of --checkpoint/);
    await expect(evalMain(['probe', '--features', 'raw', ...data], e)).rejects.toThrow(/'hvp eval knn' or 'hvp eval linear'/);
    const rgb = resnet18(e, { inChannels: 3, smallImage: true, widths: [4, 8, 8, 8], numClasses: 0 }, rng);
    const rgbCkpt = join(dir, 'rgb.safetensors');
    await saveCheckpoint(rgbCkpt, { model: rgb, meta: { arch: 'resnet18', method: 'simsiam', epoch: 0, step: 0, config: {} } });
    await expect(evalMain(['knn', '--checkpoint', rgbCkpt, ...data], e)).rejects.toThrow(/1-channel images but the resnet18 backbone takes 3 channels/);
  });
});
