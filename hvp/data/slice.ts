// A data-parallel rank's share of a batch, browser-safe (the explorer runs the same HVP step).

import type { ImageBatch } from './types.js';

/** Samples [lo, hi) of a batch (a data-parallel rank's share of the global batch). */
export function sliceBatch(batch: ImageBatch, lo: number, hi: number): ImageBatch {
  const n = batch.labels.length;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && 0 <= lo && lo < hi && hi <= n)) throw new Error(`sliceBatch: [${lo}, ${hi}) is not a range of the batch's ${n} samples`);
  const end = hi < n ? batch.offsets[hi] : batch.pixels.length;
  const start = batch.offsets[lo];
  return {
    pixels: batch.pixels.slice(start, end),
    offsets: batch.offsets.slice(lo, hi).map((o) => o - start),
    heights: batch.heights.slice(lo, hi),
    widths: batch.widths.slice(lo, hi),
    channels: batch.channels,
    labels: batch.labels.slice(lo, hi),
    indices: batch.indices.slice(lo, hi),
  };
}
