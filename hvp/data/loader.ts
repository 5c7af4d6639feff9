// Batches for the training loop: a seeded permutation per epoch (so a run resumed at (epoch, batch)
// sees exactly the batches it would have seen), images read concurrently a few batches ahead of the
// consumer, and unreadable images skipped and counted instead of ending a long run.

import { availableParallelism } from 'node:os';
import { Rng } from '../../engine/index.js';
import type { Dataset, Image, ImageBatch } from './types.js';

/** Batch size, shuffling, seed and prefetching of a BatchLoader. */
export interface BatchLoaderOptions {
  batchSize: number;
  /** Default true. */
  shuffle?: boolean;
  /** Default 0. */
  seed?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Batches read ahead while the consumer works on the current one (default 2; 0 = none). */
  prefetch?: number;
  /**
   * Most image reads in flight at once, over all prefetched batches (default: twice the core count, at
   * least 4): with the image folders' decode pool (one worker per core), one read decoding and one
   * queued behind it per worker, so no worker waits on the main thread between images.
   */
  workers?: number;
  /** Called once per unreadable image, the first time it fails. */
  onSkip?: (index: number, error: Error) => void;
}

/** Pack images into one buffer; all must have the same number of channels. */
export function packBatch(images: Image[], indices: number[]): ImageBatch {
  if (images.length === 0) throw new Error('packBatch: no images');
  if (indices.length !== images.length) throw new Error(`packBatch: ${images.length} images but ${indices.length} indices`);
  const channels = images[0].pixels.length / (images[0].height * images[0].width);
  const offsets = new Uint32Array(images.length);
  let total = 0;
  images.forEach((img, i) => {
    if (img.pixels.length !== channels * img.height * img.width) {
      throw new Error(`packBatch: image ${indices[i]} has ${img.pixels.length} bytes, not ${channels}×${img.height}×${img.width}`);
    }
    offsets[i] = total;
    total += img.pixels.length;
  });
  // Not zero-filled: the images cover every byte, back to back. A fresh zeroed 16 MB buffer per batch
  // costed the main thread more than the copies themselves (the kernel's page faults and zeroing).
  // Unpooled, so `pixels.buffer` holds this batch alone, from offset 0.
  const raw = Buffer.allocUnsafeSlow(total);
  const pixels = new Uint8Array(raw.buffer, raw.byteOffset, total);
  images.forEach((img, i) => pixels.set(img.pixels, offsets[i]));
  return {
    pixels,
    offsets,
    heights: Uint32Array.from(images, (img) => img.height),
    widths: Uint32Array.from(images, (img) => img.width),
    channels,
    labels: Int32Array.from(images, (img) => img.label),
    indices: Int32Array.from(indices),
  };
}

/** A 32-bit hash of (seed, epoch): every epoch of every seed gets its own generator stream. */
function epochSeed(seed: number, epoch: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x243f6a88, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ (epoch >>> 0), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Caps the number of concurrent calls (reads of all prefetched batches share it). */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A finishing call hands its slot straight to the next waiter, so `active` never exceeds the limit.
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * After this many failed reads without a single success, the data set is taken as unreadable as a whole
 * (a wrong path pattern, a missing codec) rather than reading every one of a million files to prove it.
 */
const GIVE_UP_AFTER = 256;

/** Seeded, shuffling, prefetching batches of a data set, packed for the GPU (ImageBatch). */
export class BatchLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  private readonly limiter: Limiter;
  private readonly onSkip?: (index: number, error: Error) => void;
  /** Indices known to be unreadable: not read again (in this or later epochs). */
  private readonly bad = new Set<number>();
  private readOk = 0;

  constructor(
    readonly dataset: Dataset,
    options: BatchLoaderOptions,
  ) {
    const { batchSize, shuffle = true, seed = 0, dropLast = false, prefetch = 2 } = options;
    const workers = options.workers ?? Math.max(4, 2 * availableParallelism());
    if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`BatchLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (!(Number.isInteger(prefetch) && prefetch >= 0)) throw new Error(`BatchLoader: prefetch must be an integer >= 0, got ${prefetch}`);
    if (!(Number.isInteger(workers) && workers > 0)) throw new Error(`BatchLoader: workers must be a positive integer, got ${workers}`);
    if (dataset.length === 0) throw new Error(`BatchLoader: ${dataset.name} is empty`);
    if (dropLast && dataset.length < batchSize) {
      throw new Error(`BatchLoader: ${dataset.name} has ${dataset.length} images, fewer than one batch of ${batchSize} (dropLast)`);
    }
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.prefetch = prefetch;
    this.limiter = new Limiter(workers);
    this.onSkip = options.onSkip;
  }

  /** Number of distinct unreadable images met so far. */
  get skipped(): number {
    return this.bad.size;
  }

  get batchesPerEpoch(): number {
    const n = this.dataset.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The order in which epoch `epoch` visits the data set: a permutation that depends only on (seed, epoch). */
  order(epoch: number): Int32Array {
    const n = this.dataset.length;
    const order = Int32Array.from({ length: n }, (_, i) => i);
    if (!this.shuffle) return order;
    const rng = new Rng(epochSeed(this.seed, epoch));
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }

  /** The batches of epoch `epoch` from batch `startBatch` on, read `prefetch` batches ahead. */
  async *epochBatches(epoch: number, startBatch = 0): AsyncIterable<ImageBatch> {
    if (!(Number.isInteger(epoch) && epoch >= 0)) throw new Error(`BatchLoader: epoch must be an integer >= 0, got ${epoch}`);
    if (!(Number.isInteger(startBatch) && startBatch >= 0)) throw new Error(`BatchLoader: startBatch must be an integer >= 0, got ${startBatch}`);
    const order = this.order(epoch);
    const pending: Promise<ImageBatch>[] = [];
    let next = startBatch;
    while (next < this.batchesPerEpoch || pending.length > 0) {
      // The batch about to be awaited plus `prefetch` more stay in flight while the consumer works.
      while (next < this.batchesPerEpoch && pending.length <= this.prefetch) {
        const batch = this.loadBatch(order, next++);
        // Mark as handled: a consumer that stops early must not leave unhandled rejections behind.
        batch.catch(() => {});
        pending.push(batch);
      }
      yield await pending.shift()!;
    }
  }

  /**
   * Batch `b` takes the images at positions [b·B, b·B + B) of the epoch's order; an unreadable one is
   * replaced by the images that follow the batch in the order (wrapping around), so the batch keeps
   * its size and its content depends only on (epoch, b), never on what earlier batches met (the price:
   * with unreadable files, a few images appear twice in an epoch).
   */
  private async loadBatch(order: Int32Array, b: number): Promise<ImageBatch> {
    const n = order.length;
    const start = b * this.batchSize;
    const want = Math.min(this.batchSize, n - start);
    const images: Image[] = [];
    const indices: number[] = [];
    let tried = 0;
    while (images.length < want && tried < n) {
      const count = Math.min(want - images.length, n - tried);
      const candidates = Array.from({ length: count }, (_, k) => order[(start + tried + k) % n]);
      tried += count;
      const results = await Promise.all(candidates.map((i) => this.tryRead(i)));
      results.forEach((img, k) => {
        if (img) {
          images.push(img);
          indices.push(candidates[k]);
        }
      });
    }
    if (images.length === 0) throw new Error(`${this.dataset.name}: no image of the data set could be read`);
    return packBatch(images, indices);
  }

  private async tryRead(index: number): Promise<Image | null> {
    if (this.bad.has(index)) return null;
    try {
      const img = await this.limiter.run(() => this.dataset.read(index));
      this.readOk++;
      return img;
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      if (!this.bad.has(index)) {
        this.bad.add(index);
        this.onSkip?.(index, error);
      }
      if (this.readOk === 0 && this.bad.size >= Math.min(GIVE_UP_AFTER, this.dataset.length)) {
        throw new Error(`${this.dataset.name}: the first ${this.bad.size} images read all failed, e.g. ${error.message}`);
      }
      return null;
    }
  }
}
