// MNIST and Fashion-MNIST in their IDX files (gzipped or plain), the project's built-in data.
// A split is 10-60k greyscale 28×28 images: the whole split stays in memory (47 MB for train) and
// read() is a copy of one image, so the loader's time goes to the GPU, not here.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { pixelStats } from './stats.js';
import type { Dataset, Image } from './types.js';

const gunzipAsync = promisify(gunzip);

/** Debian's `dataset-fashion-mnist` package installs the gzipped IDX files here. */
export const DEFAULT_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST class names in label order. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;
/** MNIST class names (the digits). */
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;

/** Data sets stored as IDX files. */
export type IdxKind = 'fashion-mnist' | 'mnist';
/** A data set split. */
export type Split = 'train' | 'test';

/** IDX magic: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions. */
const UBYTE = 0x08;

/** The file names a split may have: the original gzipped/plain names and the dotted variant some mirrors use. */
export function idxCandidates(split: Split, what: 'images' | 'labels'): string[] {
  const prefix = split === 'train' ? 'train' : 't10k';
  const rank = what === 'images' ? 'idx3' : 'idx1';
  const names = [`${prefix}-${what}-${rank}-ubyte`, `${prefix}-${what}.${rank}-ubyte`];
  return names.flatMap((n) => [`${n}.gz`, n]);
}

/** The first candidate present in `dir`, or undefined. */
export function findIdxFile(dir: string, split: Split, what: 'images' | 'labels'): string | undefined {
  return idxCandidates(split, what).map((n) => join(dir, n)).find((p) => existsSync(p));
}

/** An IDX file's dimensions and its data (a view into the decompressed file). */
export async function readIdx(path: string, rank: number): Promise<{ dims: number[]; data: Uint8Array }> {
  let bytes: Uint8Array = await readFile(path);
  // Decide by the gzip magic rather than the name: some downloads are decompressed but keep `.gz`.
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (e) {
      throw new Error(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  const header = 4 + 4 * rank;
  if (bytes.length < header) throw new Error(`${path}: ${bytes.length} bytes is too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const expected = (UBYTE << 8) | rank;
  if (magic !== expected) {
    throw new Error(`${path}: bad IDX magic 0x${hex(magic)} (expected 0x${hex(expected)}: unsigned bytes, ${rank} dimensions)`);
  }
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + size) {
    const how = bytes.length < header + size ? 'truncated' : 'has trailing bytes';
    throw new Error(`${path}: ${how}: dims [${dims.join(', ')}] need ${header + size} bytes, the file has ${bytes.length}`);
  }
  return { dims, data: bytes.subarray(header) };
}

function hex(v: number): string {
  return v.toString(16).padStart(8, '0');
}

/** One split of an IDX dataset, held in memory. */
export class IdxDataset implements Dataset {
  readonly channels = 1;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly size: readonly [number, number];

  constructor(
    readonly name: string,
    readonly classes: readonly string[],
    /** N × H × W pixels. */
    readonly images: Uint8Array,
    readonly labels: Uint8Array,
    height: number,
    width: number,
  ) {
    this.size = [height, width];
    ({ mean: this.mean, std: this.std } = pixelStats(images, { count: labels.length, channels: 1, plane: height * width, stride: height * width }));
  }

  get length(): number {
    return this.labels.length;
  }

  async read(index: number): Promise<Image> {
    checkIndex(this, index);
    const [height, width] = this.size;
    const plane = height * width;
    // A copy: callers may keep or modify the pixels without touching the dataset.
    const pixels = this.images.slice(index * plane, (index + 1) * plane);
    return { pixels, height, width, label: this.labels[index] };
  }
}

/** Throws unless `index` is an integer in [0, ds.length). */
export function checkIndex(ds: Dataset, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= ds.length) {
    throw new RangeError(`${ds.name}: index ${index} is out of range [0, ${ds.length})`);
  }
}

/** Open `split` of the MNIST-format dataset in `dir`; files, headers, counts and labels are validated. */
export async function openIdx(dir: string, split: Split, kind: IdxKind = 'fashion-mnist'): Promise<IdxDataset> {
  const imagesPath = findIdxFile(dir, split, 'images');
  const labelsPath = findIdxFile(dir, split, 'labels');
  if (!imagesPath || !labelsPath) {
    const missing = [!imagesPath && 'images', !labelsPath && 'labels'].filter(Boolean) as ('images' | 'labels')[];
    const names = missing.map((w) => idxCandidates(split, w).slice(0, 2).join(' or ')).join(', and ');
    throw new Error(`${kind} ${split} split: no ${names} in ${dir}`);
  }
  const [images, labels] = await Promise.all([readIdx(imagesPath, 3), readIdx(labelsPath, 1)]);
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new Error(`${kind} ${split}: ${imagesPath} holds ${count} images but ${labelsPath} holds ${labels.dims[0]} labels`);
  }
  if (count === 0) throw new Error(`${kind} ${split}: ${imagesPath} holds no images`);
  const classes = kind === 'fashion-mnist' ? FASHION_MNIST_CLASSES : MNIST_CLASSES;
  const bad = labels.data.findIndex((l) => l >= classes.length);
  if (bad >= 0) throw new Error(`${labelsPath}: label ${labels.data[bad]} at index ${bad} is not a class (0-${classes.length - 1})`);
  return new IdxDataset(`${kind}/${split}`, classes, images.data, labels.data, height, width);
}
