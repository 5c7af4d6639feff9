// CIFAR-10 in its binary version: records of 1 label byte + 3072 pixel bytes (3 × 32 × 32, already
// channel-major, so read() is one copy). The 50k training images (150 MB) stay in memory.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkIndex, type Split } from './idx.js';
import { pixelStats } from './stats.js';
import type { Dataset, Image } from './types.js';

/** CIFAR-10 class names in label order. */
export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;

const SIDE = 32;
const PIXELS = 3 * SIDE * SIDE;
const RECORD = 1 + PIXELS;

/** The binary batch files of a CIFAR-10 split. */
export function cifarFiles(split: Split): string[] {
  return split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
}

/** The directory holding the batches: `dir` itself or the `cifar-10-batches-bin` the archive unpacks to. */
export function cifarDir(dir: string): string | undefined {
  for (const d of [dir, join(dir, 'cifar-10-batches-bin')]) {
    if (existsSync(join(d, 'data_batch_1.bin')) || existsSync(join(d, 'test_batch.bin'))) return d;
  }
  return undefined;
}

/** CIFAR-10 from its binary batches. */
export class CifarDataset implements Dataset {
  readonly channels = 3;
  readonly size = [SIDE, SIDE] as const;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly length: number;
  /** Label of every image, kept apart from the records for per-class subsets. */
  readonly labels: Uint8Array;

  constructor(
    readonly name: string,
    readonly classes: readonly string[],
    /** Whole records back to back, labels included. */
    readonly records: Uint8Array,
  ) {
    this.length = records.length / RECORD;
    this.labels = new Uint8Array(this.length);
    for (let i = 0; i < this.length; i++) this.labels[i] = records[i * RECORD];
    ({ mean: this.mean, std: this.std } = pixelStats(records, { count: this.length, channels: 3, plane: SIDE * SIDE, stride: RECORD, start: 1 }));
  }

  async read(index: number): Promise<Image> {
    checkIndex(this, index);
    const start = index * RECORD;
    return { pixels: this.records.slice(start + 1, start + RECORD), height: SIDE, width: SIDE, label: this.records[start] };
  }
}

/** Class names from `batches.meta.txt` (one per line) when present, else the standard ten. */
async function readClasses(dir: string): Promise<readonly string[]> {
  const meta = join(dir, 'batches.meta.txt');
  if (!existsSync(meta)) return CIFAR10_CLASSES;
  const names = (await readFile(meta, 'utf8')).split('\n').map((s) => s.trim()).filter(Boolean);
  return names.length > 0 ? names : CIFAR10_CLASSES;
}

/** Open `split` of CIFAR-10 in `dir` (or its `cifar-10-batches-bin/`); sizes and labels are validated. */
export async function openCifar10(dir: string, split: Split): Promise<CifarDataset> {
  const root = cifarDir(dir) ?? dir;
  const paths = cifarFiles(split).map((f) => join(root, f));
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length > 0) throw new Error(`cifar10 ${split} split: missing ${missing.join(', ')}`);
  const [classes, parts] = await Promise.all([readClasses(root), Promise.all(paths.map((p) => readFile(p)))]);
  parts.forEach((part, i) => {
    if (part.length === 0 || part.length % RECORD !== 0) {
      throw new Error(`${paths[i]}: ${part.length} bytes is not a whole number of ${RECORD}-byte records (1 label + 3×32×32 pixels)`);
    }
  });
  const records = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  for (let i = 0; i < records.length; i += RECORD) {
    if (records[i] >= classes.length) {
      throw new Error(`cifar10 ${split}: label ${records[i]} of image ${i / RECORD} is not a class (0-${classes.length - 1})`);
    }
  }
  return new CifarDataset(`cifar10/${split}`, classes, records);
}
