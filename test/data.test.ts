// Data sets and the batch loader, on tiny synthetic files written to a temporary directory: IDX
// (gzipped and plain), CIFAR-10 batches, an image folder generated with sharp (with a corrupt file),
// and an in-memory data set for the loader's order, resume, prefetch and skip behaviour.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../engine/rng.js';
import {
  BatchLoader, CIFAR10_CLASSES, DEFAULT_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, MNIST_CLASSES,
  detectKind, firstPerClass, openDataset, packBatch, subset,
  type Dataset, type Image, type ImageBatch,
} from '../hvp/data/index.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hvp-data-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function randomBytes(n: number, rng: Rng, max = 256): Uint8Array {
  return Uint8Array.from({ length: n }, () => rng.int(max));
}

/** Float64 mean/std of channel c of `count` CHW images stored at `stride`-byte records from `start`. */
function statsRef(bytes: Uint8Array, count: number, channels: number, plane: number, stride: number, start: number) {
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    const v: number[] = [];
    for (let r = 0; r < count; r++) for (let k = 0; k < plane; k++) v.push(bytes[start + r * stride + c * plane + k] / 255);
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    mean.push(m);
    std.push(Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length));
  }
  return { mean, std };
}

function idxFile(rank: number, dims: number[], data: Uint8Array, magic = 0x0800 | rank): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * rank));
  header.setUint32(0, magic);
  dims.forEach((d, i) => header.setUint32(4 + 4 * i, d));
  return Buffer.concat([new Uint8Array(header.buffer), data]);
}

async function writeIdxSplit(dir: string, prefix: string, images: Uint8Array, labels: Uint8Array, h: number, w: number, gz: boolean) {
  await mkdir(dir, { recursive: true });
  const put = (name: string, bytes: Uint8Array) => writeFile(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(bytes) : bytes);
  await put(`${prefix}-images-idx3-ubyte`, idxFile(3, [labels.length, h, w], images));
  await put(`${prefix}-labels-idx1-ubyte`, idxFile(1, [labels.length], labels));
}

describe('IDX (MNIST / Fashion-MNIST)', () => {
  const rng = new Rng(11);
  const [n, h, w] = [7, 5, 4]; // H ≠ W catches a swapped size
  const images = randomBytes(n * h * w, rng);
  const labels = randomBytes(n, rng, 10);
  const testImages = randomBytes(3 * h * w, rng);
  const testLabels = Uint8Array.from([3, 1, 4]);
  let dir: string;
  beforeAll(async () => {
    dir = join(tmp, 'fashion');
    await writeIdxSplit(dir, 'train', images, labels, h, w, true);
    await writeIdxSplit(dir, 't10k', testImages, testLabels, h, w, false);
  });

  it('reads a gzipped train split back, with statistics from the data', async () => {
    const ds = await openDataset({ kind: 'fashion-mnist', dir, split: 'train' });
    expect([ds.name, ds.length, ds.channels, ds.size]).toEqual(['fashion-mnist/train', n, 1, [h, w]]);
    expect(ds.classes).toEqual(FASHION_MNIST_CLASSES);
    for (const i of [0, 4, n - 1]) {
      const img = await ds.read(i);
      expect([img.height, img.width, img.label]).toEqual([h, w, labels[i]]);
      expect(Array.from(img.pixels)).toEqual(Array.from(images.subarray(i * h * w, (i + 1) * h * w)));
    }
    const ref = statsRef(images, n, 1, h * w, h * w, 0);
    expect(ds.mean[0]).toBeCloseTo(ref.mean[0], 12);
    expect(ds.std[0]).toBeCloseTo(ref.std[0], 12);
    await expect(ds.read(n)).rejects.toThrow(/out of range/);
  });

  it('reads a plain t10k split as the test split; auto-detection tells MNIST by the directory name', async () => {
    const ds = await openDataset({ kind: 'auto', dir, split: 'test' });
    expect([ds.name, ds.length]).toEqual(['fashion-mnist/test', 3]);
    expect((await ds.read(2)).label).toBe(4);
    expect(Array.from((await ds.read(1)).pixels)).toEqual(Array.from(testImages.subarray(h * w, 2 * h * w)));
    const digits = join(tmp, 'digits');
    await writeIdxSplit(digits, 't10k', testImages, testLabels, h, w, true);
    expect(detectKind(digits)).toBe('mnist');
    expect((await openDataset({ kind: 'auto', dir: digits, split: 'test' })).classes).toEqual(MNIST_CLASSES);
  });

  it('rejects a bad magic, a truncated file, mismatched counts and bad labels, naming the file', async () => {
    const cases: [string, Uint8Array, Uint8Array, RegExp][] = [
      ['magic', idxFile(3, [n, h, w], images, 0x0903), idxFile(1, [n], labels), /train-images-idx3-ubyte.*bad IDX magic/],
      ['trunc', idxFile(3, [n, h, w], images).subarray(0, 40), idxFile(1, [n], labels), /train-images-idx3-ubyte.*truncated/],
      ['count', idxFile(3, [n, h, w], images), idxFile(1, [n - 1], labels.subarray(1)), /7 images but .* 6 labels/],
      ['label', idxFile(3, [n, h, w], images), idxFile(1, [n], Uint8Array.from(labels).fill(10, 2, 3)), /label 10 at index 2/],
    ];
    for (const [name, img, lab, err] of cases) {
      const d = join(tmp, `bad-${name}`);
      await mkdir(d);
      await writeFile(join(d, 'train-images-idx3-ubyte.gz'), gzipSync(img));
      await writeFile(join(d, 'train-labels-idx1-ubyte'), lab);
      await expect(openDataset({ kind: 'mnist', dir: d, split: 'train' })).rejects.toThrow(err);
    }
  });

  it('explains a missing directory or missing files and how to fix it', async () => {
    await expect(openDataset({ kind: 'fashion-mnist', dir: join(tmp, 'nowhere'), split: 'train' })).rejects.toThrow(
      /nowhere does not exist.*npm run setup -- --data.*--data DIR/,
    );
    const empty = join(tmp, 'empty');
    await mkdir(empty);
    await expect(openDataset({ kind: 'fashion-mnist', dir: empty, split: 'train' })).rejects.toThrow(/train-images-idx3-ubyte\.gz/);
    await expect(openDataset({ kind: 'auto', dir: empty, split: 'train' })).rejects.toThrow(/cannot tell what data set/);
  });
});

describe('CIFAR-10 binary batches', () => {
  const rng = new Rng(12);
  const counts = [2, 3, 1, 2, 2];
  const batches = counts.map((c) => {
    const rec = randomBytes(c * 3073, rng);
    for (let r = 0; r < c; r++) rec[r * 3073] = rng.int(10);
    return rec;
  });
  const all = Buffer.concat(batches);

  it('reads train records across batch files, classes from batches.meta.txt, stats per channel', async () => {
    const dir = join(tmp, 'cifar', 'cifar-10-batches-bin');
    await mkdir(dir, { recursive: true });
    await Promise.all(batches.map((b, i) => writeFile(join(dir, `data_batch_${i + 1}.bin`), b)));
    await writeFile(join(dir, 'test_batch.bin'), batches[1]);
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    await writeFile(join(dir, 'batches.meta.txt'), names.join('\n') + '\n\n');
    const ds = await openDataset({ kind: 'auto', dir: join(tmp, 'cifar'), split: 'train' });
    expect([ds.name, ds.length, ds.channels, ds.size]).toEqual(['cifar10/train', 10, 3, [32, 32]]);
    expect(ds.classes).toEqual(names);
    for (const i of [0, 2, 5, 9]) {
      const img = await ds.read(i);
      expect(img.label).toBe(all[i * 3073]);
      expect(Array.from(img.pixels)).toEqual(Array.from(all.subarray(i * 3073 + 1, (i + 1) * 3073)));
    }
    const ref = statsRef(all, 10, 3, 1024, 3073, 1);
    ds.mean.forEach((m, c) => expect(m).toBeCloseTo(ref.mean[c], 12));
    ds.std.forEach((s, c) => expect(s).toBeCloseTo(ref.std[c], 12));
    const test = await openDataset({ kind: 'cifar10', dir, split: 'test' });
    expect(test.length).toBe(3);
  });

  it('uses the standard names without meta and rejects a file that is not whole records', async () => {
    const dir = join(tmp, 'cifar-plain');
    await mkdir(dir);
    await writeFile(join(dir, 'test_batch.bin'), batches[0]);
    expect((await openDataset({ kind: 'cifar10', dir, split: 'test' })).classes).toEqual(CIFAR10_CLASSES);
    await expect(openDataset({ kind: 'cifar10', dir, split: 'train' })).rejects.toThrow(/missing .*data_batch_1\.bin/);
    await writeFile(join(dir, 'test_batch.bin'), batches[0].subarray(0, 3073 + 100));
    await expect(openDataset({ kind: 'cifar10', dir, split: 'test' })).rejects.toThrow(/test_batch\.bin: 3173 bytes is not a whole number/);
  });
});

describe('image folder', () => {
  const rng = new Rng(13);
  const raw = (w: number, h: number, c: number) => ({ data: randomBytes(w * h * c, rng), w, h, c });
  const rgbPng = raw(7, 5, 3);
  const greyPng = raw(4, 6, 1);
  const rgbaPng = raw(5, 3, 4);
  // JPEG is lossy and subsamples colour, so its source is smooth: a gradient that survives encoding.
  const jpeg = { data: Uint8Array.from({ length: 30 * 20 * 3 }, (_, q) => ((q / 3) % 30) * 4 + Math.floor(q / 90) * 5 + (q % 3) * 20), w: 30, h: 20, c: 3 };
  const encode = (r: ReturnType<typeof raw>) => sharp(r.data, { raw: { width: r.w, height: r.h, channels: r.c as 1 | 3 | 4 } });
  let root: string;
  beforeAll(async () => {
    root = join(tmp, 'folder');
    for (const split of ['train', 'val']) for (const c of ['dog', 'cat']) await mkdir(join(root, split, c), { recursive: true });
    await encode(rgbPng).png().toFile(join(root, 'train', 'cat', 'a.png'));
    await writeFile(join(root, 'train', 'cat', 'b.jpg'), Buffer.from('not a jpeg at all'));
    await encode(greyPng).png().toFile(join(root, 'train', 'cat', 'c.PNG'));
    await writeFile(join(root, 'train', 'cat', 'notes.txt'), 'ignored');
    await encode(jpeg).jpeg({ quality: 95 }).toFile(join(root, 'train', 'dog', 'd.jpeg'));
    await encode(rgbaPng).png().toFile(join(root, 'train', 'dog', 'e.png'));
    await encode(rgbPng).png().toFile(join(root, 'val', 'dog', 'f.png'));
  });

  /** CHW channel c of an interleaved HWC source, written out pixel by pixel. */
  const plane = (r: ReturnType<typeof raw>, c: number) => Array.from({ length: r.w * r.h }, (_, p) => r.data[p * r.c + Math.min(c, r.c - 1)]);
  const channels = (img: Image) => [0, 1, 2].map((c) => Array.from(img.pixels.subarray(c * img.height * img.width, (c + 1) * img.height * img.width)));

  it('lists sorted classes and decodes PNG (RGB, grey, RGBA) exactly to RGB CHW', async () => {
    const ds = await openDataset({ kind: 'auto', dir: root, split: 'train' });
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect([ds.length, ds.channels, ds.size, ds.mean, ds.std]).toEqual([5, 3, undefined, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]]);
    const a = await ds.read(0);
    expect([a.height, a.width, a.label]).toEqual([5, 7, 0]);
    expect(channels(a)).toEqual([0, 1, 2].map((c) => plane(rgbPng, c)));
    const grey = await ds.read(2);
    expect([grey.height, grey.width]).toEqual([6, 4]);
    expect(channels(grey)).toEqual([0, 0, 0].map((c) => plane(greyPng, c)));
    const rgba = await ds.read(4);
    expect(rgba.label).toBe(1);
    expect(channels(rgba)).toEqual([0, 1, 2].map((c) => plane(rgbaPng, c)));
    const jpg = await ds.read(3);
    expect([jpg.height, jpg.width]).toEqual([20, 30]);
    const err = channels(jpg).flatMap((ch, c) => ch.map((v, p) => Math.abs(v - plane(jpeg, c)[p])));
    expect(err.reduce((s, e) => s + e, 0) / err.length).toBeLessThan(4); // the gradient spans 0-250
    await expect(ds.read(1)).rejects.toThrow(/b\.jpg: cannot decode/);
    const val = await openDataset({ kind: 'folder', dir: root, split: 'test' });
    expect([val.length, (await val.read(0)).label]).toEqual([1, 1]);
  });

  it('resizes the shorter side to loadSize, keeping the aspect ratio', async () => {
    const ds = await openDataset({ kind: 'folder', dir: root, split: 'train', loadSize: 10 });
    const jpg = await ds.read(3);
    expect([jpg.height, jpg.width, jpg.pixels.length]).toEqual([10, 15, 3 * 10 * 15]);
  });

  it('the loader skips and counts the corrupt file, filling the batch from the following images', async () => {
    const ds = await openDataset({ kind: 'folder', dir: root, split: 'train' });
    const skips: number[] = [];
    const messages: string[] = [];
    const onSkip = (i: number, e: Error) => {
      skips.push(i);
      messages.push(e.message);
    };
    const loader = new BatchLoader(ds, { batchSize: 2, shuffle: false, onSkip });
    const batches: ImageBatch[] = [];
    for await (const b of loader.epochBatches(0)) batches.push(b);
    expect(batches.map((b) => Array.from(b.indices))).toEqual([[0, 2], [2, 3], [4]]);
    expect([loader.skipped, skips]).toEqual([1, [1]]);
    expect(messages[0]).toMatch(/b\.jpg: cannot decode/);
    const first = batches[0];
    expect([Array.from(first.heights), Array.from(first.widths), Array.from(first.offsets), first.channels]).toEqual([[5, 6], [7, 4], [0, 105], 3]);
  });
});

/** In-memory images whose pixels encode their index; sizes vary so offsets matter; `bad` indices reject. */
function memoryDataset(n: number, bad: ReadonlySet<number> = new Set(), reads: number[] = []): Dataset & { labels: Int32Array } {
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 3);
  return {
    name: 'memory', length: n, channels: 1, classes: ['x', 'y', 'z'], mean: [0.5], std: [0.25], labels,
    async read(i: number): Promise<Image> {
      reads.push(i);
      await new Promise((r) => setTimeout(r, (i * 5) % 3)); // out-of-order completion
      if (bad.has(i)) throw new Error(`image ${i} is broken`);
      const [height, width] = [1 + (i % 3), 2];
      return { pixels: Uint8Array.from({ length: height * width }, (_, k) => (i * 13 + k) & 255), height, width, label: labels[i] };
    },
  };
}

async function collect(loader: BatchLoader, epoch: number, start = 0): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of loader.epochBatches(epoch, start)) out.push(b);
  return out;
}
const ids = (batches: ImageBatch[]) => batches.map((b) => Array.from(b.indices));

describe('BatchLoader', () => {
  it('visits every index once per epoch without dropLast; pixels and labels match the images', async () => {
    const ds = memoryDataset(23);
    const loader = new BatchLoader(ds, { batchSize: 5, seed: 3 });
    const batches = await collect(loader, 0);
    expect(loader.batchesPerEpoch).toBe(5);
    expect(batches.map((b) => b.indices.length)).toEqual([5, 5, 5, 5, 3]);
    const seen = ids(batches).flat();
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(seen).not.toEqual([...seen].sort((a, b) => a - b)); // shuffled
    const b = batches[1];
    for (let k = 0; k < b.indices.length; k++) {
      const img = await ds.read(b.indices[k]);
      expect(b.labels[k]).toBe(img.label);
      expect([b.heights[k], b.widths[k]]).toEqual([img.height, img.width]);
      expect(Array.from(b.pixels.subarray(b.offsets[k], b.offsets[k] + img.pixels.length))).toEqual(Array.from(img.pixels));
    }
  });

  it('is deterministic per (seed, epoch), differs across epochs and seeds, and resumes exactly', async () => {
    const ds = memoryDataset(40);
    const opts = { batchSize: 6, seed: 5, dropLast: true };
    const a = new BatchLoader(ds, opts);
    const epochs = [await collect(a, 0), await collect(a, 1)];
    expect(a.batchesPerEpoch).toBe(6);
    expect(ids(await collect(new BatchLoader(ds, opts), 0))).toEqual(ids(epochs[0]));
    expect(ids(epochs[1])).not.toEqual(ids(epochs[0]));
    expect(ids(await collect(new BatchLoader(ds, { ...opts, seed: 6 }), 0))).not.toEqual(ids(epochs[0]));
    const resumed = await collect(new BatchLoader(ds, opts), 1, 4);
    expect(resumed.map((b) => Array.from(b.pixels))).toEqual(epochs[1].slice(4).map((b) => Array.from(b.pixels)));
    expect(ids(resumed)).toEqual(ids(epochs[1]).slice(4));
    expect(new Set(ids(epochs[0]).flat()).size).toBe(36); // dropLast: 6 full batches, no repeats
  });

  it('prefetch and workers change neither content nor order', async () => {
    const ds = memoryDataset(17);
    const base = await collect(new BatchLoader(ds, { batchSize: 4, seed: 9, prefetch: 0, workers: 1 }), 2);
    for (const [prefetch, workers] of [[1, 2], [3, 16]]) {
      const other = await collect(new BatchLoader(ds, { batchSize: 4, seed: 9, prefetch, workers }), 2);
      expect(other.map((b) => [Array.from(b.indices), Array.from(b.pixels), Array.from(b.offsets)])).toEqual(
        base.map((b) => [Array.from(b.indices), Array.from(b.pixels), Array.from(b.offsets)]),
      );
    }
  });

  it('reads `prefetch` batches ahead while the consumer holds a batch', async () => {
    for (const prefetch of [0, 2]) {
      const reads: number[] = [];
      const loader = new BatchLoader(memoryDataset(40, new Set(), reads), { batchSize: 4, prefetch, workers: 64 });
      const iter = loader.epochBatches(0)[Symbol.asyncIterator]();
      await iter.next();
      await new Promise((r) => setTimeout(r, 30));
      expect(reads.length).toBe(4 * (1 + prefetch));
      await iter.return?.();
    }
  });

  it('skips unreadable images once, keeps batches full and content independent of earlier batches', async () => {
    const skips: number[] = [];
    const reads: number[] = [];
    const ds = memoryDataset(10, new Set([1, 5]), reads);
    const loader = new BatchLoader(ds, { batchSize: 4, shuffle: false, onSkip: (i) => skips.push(i) });
    expect(ids(await collect(loader, 0))).toEqual([[0, 2, 3, 4], [4, 6, 7, 8], [8, 9]]);
    expect(ids(await collect(loader, 1, 1))).toEqual([[4, 6, 7, 8], [8, 9]]);
    expect([loader.skipped, skips.sort()]).toEqual([2, [1, 5]]);
    expect(reads.filter((i) => i === 1 || i === 5)).toEqual([1, 5]); // known-bad files are not read again
    const shuffled = new BatchLoader(ds, { batchSize: 4, seed: 1, dropLast: true });
    expect((await collect(shuffled, 3)).every((b) => b.indices.length === 4 && !b.indices.includes(1) && !b.indices.includes(5))).toBe(true);
  });

  it('throws when no image can be read', async () => {
    const ds = memoryDataset(6, new Set([0, 1, 2, 3, 4, 5]));
    await expect(collect(new BatchLoader(ds, { batchSize: 2 }), 0)).rejects.toThrow(/memory: .*image \d is broken/);
  });

  it('packBatch checks its inputs; subsets map indices and keep labels', async () => {
    const img = (h: number, w: number, c: number): Image => ({ pixels: new Uint8Array(h * w * c).fill(h), height: h, width: w, label: c });
    const b = packBatch([img(2, 3, 3), img(4, 1, 3)], [7, 9]);
    expect([Array.from(b.offsets), b.channels, b.pixels.length, Array.from(b.indices)]).toEqual([[0, 18], 3, 30, [7, 9]]);
    expect(() => packBatch([img(2, 3, 3), img(2, 3, 1)], [0, 1])).toThrow(/image 1 has 6 bytes, not 3×2×3/);
    expect(() => packBatch([], [])).toThrow(/no images/);
    const ds = memoryDataset(12);
    const picked = firstPerClass(ds, 2);
    expect(picked).toEqual([0, 1, 2, 3, 4, 5]);
    const sub = subset(ds, [5, 11, 0]);
    expect([sub.length, (await sub.read(1)).pixels[0], (sub as typeof ds).labels]).toEqual([3, (11 * 13) & 255, Int32Array.from([2, 2, 0])]);
    await expect(sub.read(3)).rejects.toThrow(/out of range/);
    expect(() => subset(ds, [12])).toThrow(/index 12 is out of range/);
  });
});

// CI (.ci/run) installs the data set and sets HVP_REQUIRE_DATA, so there these checks always run; a
// machine without the data skips them and says why.
const FASHION_LABELS = join(DEFAULT_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz');
const haveFashion = existsSync(FASHION_LABELS) || process.env.HVP_REQUIRE_DATA === '1';
if (!haveFashion) {
  console.warn(`test/data.test.ts: skipping the installed Fashion-MNIST checks: ${FASHION_LABELS} is absent (node scripts/setup.mjs --data installs it)`);
}

describe.skipIf(!haveFashion)('the installed Fashion-MNIST', () => {
  it('has 60000/10000 images with the known first labels and statistics', async () => {
    const train = await openDataset({ kind: 'fashion-mnist', split: 'train' });
    const test = await openDataset({ kind: 'auto', split: 'test' });
    expect([train.length, test.length, train.size]).toEqual([60000, 10000, [28, 28]]);
    const first = async (ds: Dataset) => Promise.all(Array.from({ length: 10 }, async (_, i) => (await ds.read(i)).label));
    expect(await first(train)).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    expect(await first(test)).toEqual([9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    expect(train.mean[0]).toBeCloseTo(0.286, 3);
    expect(train.std[0]).toBeCloseTo(0.353, 3);
  });
});
