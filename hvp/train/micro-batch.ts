// Gradient accumulation splits a step's batch into micro-batches of consecutive samples: the images
// of each, and each sample's share of the view parameters drawn for the whole batch.

import type { ImageBatch } from '../data/types.js';
import type { ViewGroup } from '../methods/method.js';
import type { ViewParams } from '../views/index.js';

/** Images `from` .. `from + count - 1` of `batch`, their pixels copied into a batch of their own. */
export function sliceBatch(batch: ImageBatch, from: number, count: number): ImageBatch {
  const n = batch.offsets.length;
  if (!(Number.isInteger(from) && Number.isInteger(count) && from >= 0 && count >= 1 && from + count <= n)) {
    throw new Error(`sliceBatch: images ${from}..${from + count - 1} are outside the batch of ${n}`);
  }
  const c = batch.channels;
  const bytes = (i: number) => c * batch.heights[i] * batch.widths[i];
  let total = 0;
  for (let i = from; i < from + count; i++) total += bytes(i);
  const pixels = new Uint8Array(total);
  const offsets = new Uint32Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const j = from + i;
    offsets[i] = at;
    pixels.set(batch.pixels.subarray(batch.offsets[j], batch.offsets[j] + bytes(j)), at);
    at += bytes(j);
  }
  const part = (a: Uint32Array) => a.slice(from, from + count);
  return {
    pixels,
    offsets,
    heights: part(batch.heights),
    widths: part(batch.widths),
    channels: c,
    labels: batch.labels.slice(from, from + count),
    indices: batch.indices.slice(from, from + count),
  };
}

/**
 * The view parameters of samples `from` .. `from + count - 1`, per group, view-major as drawParams
 * lays them out (view v of sample s of a batch of `batchSize` at v·batchSize + s).
 */
export function sliceViewParams(params: ViewParams[][], groups: readonly ViewGroup[], batchSize: number, from: number, count: number): ViewParams[][] {
  return params.map((p, g) => {
    const views = groups[g].pipelines.length;
    if (p.length !== views * batchSize) throw new Error(`sliceViewParams: group ${g} holds ${p.length} views, expected ${views} × ${batchSize}`);
    const out: ViewParams[] = [];
    for (let v = 0; v < views; v++) out.push(...p.slice(v * batchSize + from, v * batchSize + from + count));
    return out;
  });
}
