// conv2d's direct kernel (conv2d_direct.wgsl). On CPU adapters: the forward of a narrow 1-channel
// stem, and the input gradient of stride-1 layers with few input channels (as a convolution of dy with
// the flipped kernel). On every adapter: the input gradient of 1×1 strided layers in one launch (the
// GEMM takes one launch per stride phase, all but one of them writing zeros). ops/conv.ts asks here
// first and falls back to its GEMMs when these return null.

import type { Tensor } from '../engine.js';
import { defineKernel } from '../kernel.js';
import source from './conv2d_direct.wgsl';

/** Sizes of one convolution: input [n, ci, h, w], weight [co, ci, kh, kw], output [n, co, oh, ow]. */
export interface Geometry {
  n: number; ci: number; h: number; w: number;
  co: number; kh: number; kw: number; oh: number; ow: number;
  stride: number; pad: number;
}

const kernel = defineKernel({
  name: 'conv2d_direct',
  source,
  workgroupSize: 64,
  uniforms: { invocations: 'u32', channels: 'u32' },
  inputs: { src: 'f32', w: 'f32', bias: { type: 'f32', dtype: 'f32', optional: true } },
  outputs: { dst: 'f32' },
});

/** At most this many pixels in a run: with TM channels, the TM·R accumulators stay a few hundred. */
const MAX_RUN = 16;
const MAX_TM = 8;
/**
 * The unrolled body (taps × channels × pixels of multiply-adds per input channel) is kept below this:
 * lavapipe compiles it in well under a second, and larger bodies only spill registers.
 */
const MAX_BODY = 1200;
/** Output rows an invocation may own: the kernel has four accumulator arrays (acc0-acc3). */
const MAX_ROWS = 4;
/**
 * Forward: a 1-channel stem into at most two blocks of output channels. Measured on lavapipe against
 * the GEMM (same session, min of 3 × 30 launches): 1 → 8 channels at 28² 1.17× faster; 1 → 64
 * channels 0.74× (every block reloads the input), 3 → 64 channels 0.5×, and 1×1 stride-2 layers
 * level (0.84-1.13×), so those keep the GEMM (or, narrow ones, take conv-pointwise.ts).
 */
const STEM_MAX_OUT = 2 * MAX_TM;
/** Input gradient (stride 1): at most this many input channels (the GEMM's M) take the flipped kernel. */
const FEW_CHANNELS = 4;

interface Pass {
  /** dy or x, contiguous. */
  src: Tensor;
  /** Channels of src, and the destination's channels and plane. */
  channels: number;
  dstC: number; dstH: number; dstW: number;
  srcH: number; srcW: number;
  kh: number; kw: number; s: number; p: number;
  wM: number; wC: number; flip: boolean; spread: boolean;
}

/** Pixels per run: a whole row up to MAX_RUN, else the row in equal parts; SPREAD: a multiple of S. */
function runLength(width: number, multiple: number): number {
  const parts = Math.ceil(width / MAX_RUN);
  const r = Math.ceil(width / parts);
  return Math.ceil(r / multiple) * multiple;
}

/**
 * Output rows per invocation. SPREAD: the S rows of one row of dy (one loads, the rest are zeros).
 * Otherwise as many as the unrolled body allows, up to MAX_ROWS, in equal parts of the height: an
 * input row is then loaded once for every output row that reads it, which is what a narrow TM needs
 * (loads outnumber its multiply-adds); with TM = 8 one row's loads are already few beside its stores.
 */
function rowsPerInvocation(q: Pass, tm: number, r: number): number {
  if (q.spread) return q.s;
  if (tm >= MAX_TM) return 1;
  const most = Math.max(1, Math.min(MAX_ROWS, Math.floor(MAX_BODY / (q.kh * q.kw * tm * r))));
  return Math.ceil(q.dstH / Math.ceil(q.dstH / most));
}

function launch(q: Pass, weight: Tensor, bias: Tensor | null | undefined, n: number): Tensor | null {
  const r = runLength(q.dstW, q.spread ? q.s : 1);
  const tm = Math.min(q.dstC, MAX_TM);
  if (q.kh * q.kw * tm * r > MAX_BODY) return null;
  const ry = rowsPerInvocation(q, tm, r);
  if (ry > MAX_ROWS) return null;
  const engine = q.src.engine;
  const dst = engine.empty([n, q.dstC, q.dstH, q.dstW]);
  const runs = Math.ceil(q.dstW / r);
  const invocations = n * Math.ceil(q.dstC / tm) * Math.ceil(q.dstH / ry) * runs;
  kernel.launch({
    name: q.spread || q.flip ? 'conv2d_grad_input' : 'conv2d',
    inputs: [q.src, weight, bias],
    outputs: [dst],
    uniforms: { invocations, channels: q.channels },
    grid: { invocations },
    defines: {
      SRC_H: q.srcH, SRC_W: q.srcW, DST_C: q.dstC, DST_H: q.dstH, DST_W: q.dstW, KH: q.kh, KW: q.kw,
      S: q.s, P: q.p, TM: tm, R: r, RUNS: runs, RY: ry, ROW1: ry > 1, ROW2: ry > 2, ROW3: ry > 3, W_M: q.wM, W_C: q.wC, FLIP: q.flip, SPREAD: q.spread,
    },
    flops: 2 * n * q.dstC * q.channels * q.dstH * q.dstW * (q.spread ? 1 / (q.s * q.s) : q.kh * q.kw),
  });
  return dst;
}

/** The forward by the direct kernel, or null where the GEMM suits the layer better (see STEM_MAX_OUT). */
export function directForward(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, g: Geometry): Tensor | null {
  if (!x.engine.backend.isCpuAdapter || !weight.isContiguous() || g.ci !== 1 || g.co > STEM_MAX_OUT) return null;
  return launch(
    {
      src: x, channels: g.ci, dstC: g.co, dstH: g.oh, dstW: g.ow, srcH: g.h, srcW: g.w,
      kh: g.kh, kw: g.kw, s: g.stride, p: g.pad, wM: g.ci * g.kh * g.kw, wC: g.kh * g.kw, flip: false, spread: false,
    },
    weight, bias, g.n,
  );
}

/**
 * The input gradient by the direct kernel, or null: a stride-1 layer with few input channels (dx is dy
 * convolved with the flipped, transposed kernel at padding K − 1 − pad), or a 1×1 layer of any stride
 * without padding (SPREAD).
 */
export function directGradInput(dy: Tensor, weight: Tensor, g: Geometry): Tensor | null {
  if (!weight.isContiguous()) return null;
  const taps = g.kh * g.kw;
  // On every adapter: one launch that writes each pixel of dx once replaces s² GEMM launches, s² − 1 of
  // which only write zeros.
  if (g.kh === 1 && g.kw === 1 && g.pad === 0 && g.stride > 1) {
    return launch(
      {
        src: dy, channels: g.co, dstC: g.ci, dstH: g.h, dstW: g.w, srcH: g.oh, srcW: g.ow,
        kh: 1, kw: 1, s: g.stride, p: 0, wM: 1, wC: g.ci, flip: false, spread: true,
      },
      weight, null, g.n,
    );
  }
  if (!dy.engine.backend.isCpuAdapter || g.stride !== 1 || g.ci > FEW_CHANNELS || g.pad > g.kh - 1 || g.pad > g.kw - 1 || g.kh !== g.kw) return null;
  return launch(
    {
      src: dy, channels: g.co, dstC: g.ci, dstH: g.h, dstW: g.w, srcH: g.oh, srcW: g.ow,
      kh: g.kh, kw: g.kw, s: 1, p: g.kh - 1 - g.pad, wM: taps, wC: g.ci * taps, flip: true, spread: false,
    },
    weight, null, g.n,
  );
}
