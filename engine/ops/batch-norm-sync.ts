// Synchronised batch norm (PyTorch's SyncBatchNorm): in training, each channel's statistics are those
// of the global batch over every replica, and the backward's per-channel sums are the global ones.
// The batch-norm kernels stay as they are; two host steps (Runtime.hostStep) sit between their
// launches:
//   forward:  the statistics launch's chunk summaries (count, mean, M2) are merged per channel in
//             float64, summed over the replicas as (count, Σx, Σx²), and written back as one chunk of
//             global (count, mean, M2) per channel (the other chunks empty), which the normalising
//             launch merges as before: the global mean, the global biased variance, and the running
//             variance unbiased with the global count.
//   backward: the reduce launch's chunk sums (Σ gm, Σ gm·x̂) are summed per channel in float64: their
//             local values are the weight's and bias's gradients (the gradient averaging across
//             replicas then sums them, as DistributedDataParallel does after SyncBatchNorm), and their
//             global values, scaled by local count / global count, are written back for the
//             input-gradient launch, which divides by its local count: dx = rstd·w·(gm - Σgm/M -
//             x̂·Σgm·x̂/M) with the global sums and count M, as PyTorch's batch_norm_backward_elemt.

import type { Engine, Tensor } from '../engine.js';

/**
 * How the replicas combine their values: an element-wise sum over every replica, the same result on
 * each (an MPI all-reduce). Every replica must call it the same number of times in the same order;
 * it may block.
 */
export interface BatchNormSync {
  /** `values` summed element-wise over every replica (a new array; the same on each replica). */
  sum(values: Float64Array): Float64Array;
}

const region = (t: Tensor, floats: number) => ({ buffer: t.buffer, byteOffset: t.offset * 4, byteLength: floats * 4 });

/**
 * Make `part` (C × chunks vec4 summaries (count, mean, M2, 0) of the statistics launch) hold the
 * global batch's summary per channel, once the statistics launch has run.
 */
export function syncStatistics(engine: Engine, part: Tensor, c: number, chunks: number, sync: BatchNormSync): void {
  engine.backend.hostStep([region(part, c * chunks * 4)], ([raw]) => {
    const p = new Float32Array(raw);
    // Per channel (count, Σx, Σx²), from the chunks merged exactly (Chan's parallel form) first.
    const local = new Float64Array(3 * c);
    for (let ch = 0; ch < c; ch++) {
      let n = 0;
      let sm = 0;
      for (let j = 0; j < chunks; j++) {
        const at = (ch * chunks + j) * 4;
        n += p[at];
        sm += p[at] * p[at + 1];
      }
      const mean = n > 0 ? sm / n : 0;
      let m2 = 0;
      for (let j = 0; j < chunks; j++) {
        const at = (ch * chunks + j) * 4;
        const d = p[at + 1] - mean;
        m2 += p[at + 2] + p[at] * d * d;
      }
      local[3 * ch] = n;
      local[3 * ch + 1] = n * mean;
      local[3 * ch + 2] = m2 + n * mean * mean;
    }
    const global = sync.sum(local);
    const out = new Float32Array(c * chunks * 4);
    for (let ch = 0; ch < c; ch++) {
      const n = global[3 * ch];
      const mean = global[3 * ch + 1] / n;
      // Σx² - (Σx)²/n in float64 loses about 1e-16·(mean/std)² of the variance: below float32's
      // rounding while |mean|/std stays under ~1e4.
      const m2 = Math.max(global[3 * ch + 2] - global[3 * ch + 1] * mean, 0);
      out.set([n, mean, m2, 0], ch * chunks * 4);
    }
    return [{ buffer: part.buffer, byteOffset: part.offset * 4, data: out }];
  });
}

/**
 * Make `part` (C × chunks vec4 sums (Σ gm, Σ gm·x̂, 0, 0) of the gradient-reduce launch) hold the
 * global sums scaled by localCount / globalCount in its first chunk per channel, and write the local
 * sums into `db` and `dw` (when given), once the reduce launch has run.
 */
export function syncGradientSums(
  engine: Engine,
  part: Tensor,
  c: number,
  chunks: number,
  localCount: number,
  grads: { dw: Tensor | null; db: Tensor | null },
  sync: BatchNormSync,
): void {
  engine.backend.hostStep([region(part, c * chunks * 4)], ([raw]) => {
    const p = new Float32Array(raw);
    // (Σ gm, Σ gm·x̂) per channel, then the local count, which the replicas sum into the global one.
    const local = new Float64Array(2 * c + 1);
    for (let ch = 0; ch < c; ch++) {
      let sg = 0;
      let sgx = 0;
      for (let j = 0; j < chunks; j++) {
        const at = (ch * chunks + j) * 4;
        sg += p[at];
        sgx += p[at + 1];
      }
      local[2 * ch] = sg;
      local[2 * ch + 1] = sgx;
    }
    local[2 * c] = localCount;
    const writes = [];
    if (grads.db) writes.push({ buffer: grads.db.buffer, byteOffset: grads.db.offset * 4, data: Float32Array.from({ length: c }, (_, ch) => local[2 * ch]) });
    if (grads.dw) writes.push({ buffer: grads.dw.buffer, byteOffset: grads.dw.offset * 4, data: Float32Array.from({ length: c }, (_, ch) => local[2 * ch + 1]) });
    const global = sync.sum(local);
    const scale = localCount / global[2 * c];
    const out = new Float32Array(c * chunks * 4);
    for (let ch = 0; ch < c; ch++) out.set([global[2 * ch] * scale, global[2 * ch + 1] * scale], ch * chunks * 4);
    writes.push({ buffer: part.buffer, byteOffset: part.offset * 4, data: out });
    return writes;
  });
}
