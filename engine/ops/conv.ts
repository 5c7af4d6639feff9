// conv2d (PyTorch's F.conv2d: NCHW, dilation 1, groups 1) as three implicit GEMMs on one templated
// kernel (conv2d.wgsl): the forward, the input gradient (a transposed convolution, one GEMM
// per stride phase so that taps landing between output pixels are never visited) and the weight
// gradient (split over K, the batch·pixels axis, so that a small [Co, Ci·KH·KW] result still fills
// the device). Only the weight is ever permuted in memory; activations are read in place (a
// non-contiguous input is made contiguous first).

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt } from '../shape.js';
import { checkInputs } from './map.js';
import { contiguous, permute, reshape } from './view.js';
import { sum } from './broadcast.js';
import { defineKernel, type ScalarType } from '../kernel.js';
import { gemmKernel, type GemmTile } from './gemm-kernel.js';
import { directForward, directGradInput, type Geometry } from './conv-direct.js';
import { pointwiseForward } from './conv-pointwise.js';
import source from './conv2d.wgsl';
import gradWeightCpuSource from './conv2d_grad_weight_cpu.wgsl';

/** Stride, padding, dilation and groups of a 2-D convolution. */
export interface Conv2dOptions {
  stride?: number;
  padding?: number;
}


type Mode = 'FWD' | 'DX' | 'DW';

/**
 * GPUs: 8×8 invocations with 8×8 blocks (64×64 tiles; 64 accumulators is the classic SGEMM register
 * budget), or 4×8 blocks when M ≤ 32 (e.g. 32 output channels) so that tiles are not half padding.
 * BK, the slab depth, is a chunk of channels (DW: pixels): 16, or 4/8 for smaller extents (RGB stems)
 * so that the padded chunk wastes little.
 * CPU adapters (FWD and DX): the unstaged variant with a row of 16 invocations, each a 16×8 block, or
 * 8×16 when M ≤ 8 (8-channel layers, where 16 rows would be half padding). On lavapipe the loads
 * cost as much as the multiply-adds (they are gathers), so the larger block, which needs fewer loads
 * per multiply-add, measured 15-25% faster than 8×8 blocks on 8×8 invocations (ResNet 3×3 conv);
 * a single row of invocations keeps small-M GEMMs from padding their tiles.
 */
function tileFor(cpu: boolean, m: number, chunkExtent: number): GemmTile {
  if (cpu) return { STAGED: false, TM: m <= 8 ? 8 : 16, TN: m <= 8 ? 16 : 8, WX: 16, WY: 1, BK: 0 };
  const bk = chunkExtent >= 16 ? 16 : chunkExtent > 4 ? 8 : 4;
  return { STAGED: true, TM: m <= 32 ? 4 : 8, TN: 8, WX: 8, WY: 8, BK: bk };
}

/** Weight-gradient split-K: aim for this many workgroups, but give each at least MIN_SPLIT_K pixels. */
const SPLIT_TARGET_WORKGROUPS = 128;
const MIN_SPLIT_K = 256;

/**
 * The GEMM kernel's uniforms, in order: GEMM rows and columns; channels per tap; DW's split of K;
 * FWD/DX: taps visited, the first one, their spacing, and B's pixel = column ± tap (tap_sign); B's
 * plane (src_h, src_w); the kernel's geometry; the operands' offsets; column p of C and B as digits
 * (i·col_mid + hh)·col_inner + ww scaled and shifted (col_scale, col_h0, col_w0); where C[m, p] goes
 * (out_*: see out_base in the shader); DW: the batch, dy's size and channels, and the staged variant's
 * BK pixels as (rows, columns).
 */
const FIELDS = [
  'm', 'n', 'kc', 'k_per_slice', 'taps_h', 'taps_w', 'tap_h0', 'tap_w0',
  'tap_step', 'tap_sign', 'src_h', 'src_w', 'kh', 'kw', 'stride', 'pad',
  'col_mid', 'col_inner', 'col_scale', 'col_h0',
  'col_w0', 'out_nstride', 'out_cstride', 'out_row', 'out_h0', 'out_w0', 'out_step', 'slice',
  'images', 'oh', 'ow', 'co', 'step_h', 'step_w',
] as const;
/** The shape's fields: template values of conv2d.wgsl (upper-cased there). */
const SHAPE = [
  'm', 'kc', 'taps_h', 'taps_w', 'tap_h0', 'tap_w0', 'tap_step', 'tap_sign', 'src_h', 'src_w',
  'kh', 'kw', 'stride', 'pad', 'col_mid', 'col_inner', 'col_scale', 'col_h0', 'col_w0',
  'out_nstride', 'out_cstride', 'out_row', 'out_h0', 'out_w0', 'out_step', 'slice', 'oh', 'ow', 'co',
  'step_h', 'step_w',
] as const;
const SIGNED = new Set<string>(['tap_sign', 'col_scale', 'col_h0', 'col_w0']);
/**
 * Read from Params even on CPU adapters: as literals, the tap and channel loops unroll fully, and a
 * 64-channel layer's input-gradient pipelines then took over a minute to compile on lavapipe.
 */
const LOOP_BOUNDS = new Set<string>(['kc', 'taps_h', 'taps_w']);
/**
 * A shape-specialised pipeline costs a compile of 0.5-2 s on lavapipe, repaid over a training run's
 * many steps only when each launch has work to save: smaller GEMMs (1×1 shortcuts, tiny test shapes)
 * share one pipeline per variant that reads the shape from Params.
 */
const SPECIALISE_MIN_FLOPS = 1e6;
type Field = (typeof FIELDS)[number];
type Params = Partial<Record<Field, number>>;
const UNIFORMS = Object.fromEntries(FIELDS.map((f) => [f, SIGNED.has(f) ? 'i32' : 'u32'])) as Record<Field, ScalarType>;

const gemm = gemmKernel({ name: 'conv2d', source, uniforms: UNIFORMS });

interface Launch {
  mode: Mode;
  tile: GemmTile;
  params: Params;
  a: Tensor;
  b: Tensor;
  out: Tensor;
  bias?: Tensor;
  /** Grid z: DW split-K slices. */
  slices?: number;
}

function launch(q: Launch): void {
  const { tile } = q;
  const p: Params = q.params;
  const flops = 2 * p.m! * p.n! * (q.mode === 'DW' ? p.images! * p.oh! * p.ow! : p.kc! * p.taps_h! * p.taps_w!);
  // Literals specialise the pipeline to the shape (CPU adapters, large enough GEMMs); field reads keep
  // one pipeline per tile (GPUs, small GEMMs).
  const specialise = !tile.STAGED && flops >= SPECIALISE_MIN_FLOPS;
  const shape = Object.fromEntries(SHAPE.map((f) => {
    const v = p[f] ?? 0;
    const literal = SIGNED.has(f) ? `(${v}i)` : `${v}u`;
    return [f.toUpperCase(), specialise && !LOOP_BOUNDS.has(f) ? literal : `u.${f}`];
  }));
  const uniforms = {} as Record<Field, number>;
  for (const f of FIELDS) uniforms[f] = p[f] ?? 0;
  gemm.launch({
    name: { FWD: 'conv2d', DX: 'conv2d_grad_input', DW: 'conv2d_grad_weight' }[q.mode],
    inputs: [q.a, q.b, q.bias],
    outputs: [q.out],
    uniforms,
    workgroups: [
      Math.ceil(p.n! / (tile.TN * tile.WX)),
      Math.ceil(p.m! / (tile.TM * tile.WY)),
      q.slices ?? 1,
    ],
    workgroupSize: [tile.WX, tile.WY],
    defines: { ...tile, ...shape, DW: q.mode === 'DW' },
    flops,
  });
}

function geometry(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: Conv2dOptions): Geometry {
  const stride = opts.stride ?? 1;
  const pad = opts.padding ?? 0;
  const shapes = `input ${fmt(x.shape)}, weight ${fmt(weight.shape)}`;
  if (x.ndim !== 4 || weight.ndim !== 4) {
    throw new Error(`conv2d: expects input [N, C, H, W] and weight [out, in, kH, kW], got ${shapes}`);
  }
  const [n, ci, h, w] = x.shape;
  const [co, wci, kh, kw] = weight.shape;
  if (wci !== ci) throw new Error(`conv2d: input has ${ci} channels but weight expects ${wci} (${shapes})`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== co)) {
    throw new Error(`conv2d: bias ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)} (expects [${co}])`);
  }
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(pad) || pad < 0) {
    throw new Error(`conv2d: stride must be a positive integer and padding a non-negative one (got ${stride}, ${pad})`);
  }
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  if (oh < 1 || ow < 1) throw new Error(`conv2d: kernel larger than the padded input (${shapes}, padding ${pad})`);
  return { n, ci, h, w, co, kh, kw, oh, ow, stride, pad };
}

/** A contiguous copy of a permuted weight (or the view itself when the permutation moves only size-1 axes). */
function permuted(t: Tensor, dims: number[]): Tensor {
  const v = permute(t, dims);
  const c = contiguous(v);
  if (c !== v) v.dispose();
  return c;
}

function forward(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, g: Geometry): Tensor {
  const engine = x.engine;
  const xc = contiguous(x);
  const direct = directForward(xc, weight, bias, g) ?? pointwiseForward(xc, weight, bias, g);
  if (direct) {
    if (xc !== x) xc.dispose();
    return direct;
  }
  const out = engine.empty([g.n, g.co, g.oh, g.ow]);
  const wk = permuted(weight, [0, 2, 3, 1]); // [Co, KH, KW, Ci]: a tap's channels are contiguous
  launch({
    mode: 'FWD',
    tile: tileFor(engine.backend.isCpuAdapter, g.co, g.ci),
    params: {
      m: g.co, n: g.n * g.oh * g.ow, kc: g.ci, kh: g.kh, kw: g.kw,
      taps_h: g.kh, taps_w: g.kw, tap_step: 1, tap_sign: 1, src_h: g.h, src_w: g.w,
      col_mid: g.oh, col_inner: g.ow, col_scale: g.stride, col_h0: -g.pad, col_w0: -g.pad,
      out_nstride: g.co * g.oh * g.ow, out_cstride: g.oh * g.ow, out_row: g.ow, out_step: 1,
    },
    a: wk, b: xc, out, bias: bias ?? undefined,
  });
  wk.dispose();
  if (xc !== x) xc.dispose();
  return out;
}

/**
 * dx = transposed convolution of dy. Input pixel ih receives tap kh from output row (ih + pad - kh)/s
 * only when that divides exactly, i.e. when kh ≡ ih + pad (mod s). So the input pixels split into s²
 * phases by (ih + pad) mod s, and each phase is a dense GEMM over its own taps: no wasted K.
 */
function gradInput(dy: Tensor, weight: Tensor, g: Geometry): Tensor {
  const direct = directGradInput(dy, weight, g);
  if (direct) return direct;
  const engine = dy.engine;
  const dx = engine.empty([g.n, g.ci, g.h, g.w]);
  const wk = permuted(weight, [1, 2, 3, 0]); // [Ci, KH, KW, Co]
  const s = g.stride;
  const phase = (r: number, size: number, k: number) => {
    const first = (((r - g.pad) % s) + s) % s; // first input pixel of this phase
    return {
      first,
      count: first < size ? Math.ceil((size - first) / s) : 0,
      taps: r < k ? Math.ceil((k - r) / s) : 0,
      q0: (first + g.pad - r) / s, // output pixel that tap r reads for the phase's first pixel
    };
  };
  const tile = tileFor(engine.backend.isCpuAdapter, g.ci, g.co);
  for (let rh = 0; rh < s; rh++) {
    for (let rw = 0; rw < s; rw++) {
      const ph = phase(rh, g.h, g.kh);
      const pw = phase(rw, g.w, g.kw);
      if (ph.count === 0 || pw.count === 0) continue;
      // With no tap landing in this phase the K loop is empty and the kernel writes zeros.
      launch({
        mode: 'DX',
        tile,
        params: {
          m: g.ci, n: g.n * ph.count * pw.count, kc: g.co, kh: g.kh, kw: g.kw,
          taps_h: ph.taps, taps_w: pw.taps, tap_h0: rh, tap_w0: rw, tap_step: s, tap_sign: -1,
          src_h: g.oh, src_w: g.ow,
          col_mid: ph.count, col_inner: pw.count, col_scale: 1, col_h0: ph.q0, col_w0: pw.q0,
          out_nstride: g.ci * g.h * g.w, out_cstride: g.h * g.w, out_row: g.w,
          out_h0: ph.first, out_w0: pw.first, out_step: s,
        },
        a: wk, b: dy, out: dx,
      });
    }
  }
  wk.dispose();
  return dx;
}

/**
 * CPU adapters' weight gradient (conv2d_grad_weight_cpu.wgsl): a workgroup owns TM output channels ×
 * CB input channels (all their taps), ~128 accumulators per invocation, and splits its slice of the
 * pixels among its DW_CPU_LANES invocations (one 8-wide vector on lavapipe: 16 measured slower);
 * grid z splits the pixels further until the grid has about SPLIT_TARGET_WORKGROUPS workgroups, with
 * at least DW_CPU_MIN_PER_LANE pixels per invocation.
 */
const DW_CPU_LANES = 8;
const DW_CPU_MIN_PER_LANE = 32;
/**
 * An invocation's block is TM × (CB·taps) accumulators, summed across the workgroup through
 * LANES·TM·CB·taps floats of workgroup memory; a large kernel (a ViT's 16×16 patch embedding, 256
 * taps) would need thousands of accumulators and overflow that memory, so such layers take the GEMM.
 */
const DW_CPU_MAX_BLOCK = 128;

/** The CPU weight-gradient kernel's blocking for this layer, or null when its block does not fit. */
function cpuWeightBlocks(g: Geometry, maxWorkgroupBytes: number): { tm: number; cb: number } | null {
  const tm = g.co <= 8 ? 8 : 16;
  const taps = g.kh * g.kw;
  const cb = Math.max(1, Math.min(g.ci, Math.round(DW_CPU_MAX_BLOCK / tm / taps)));
  const block = tm * cb * taps;
  if (block > 2 * DW_CPU_MAX_BLOCK || DW_CPU_LANES * block * 4 > maxWorkgroupBytes) return null;
  // Its pipeline is specialised to the shape, which small layers do not repay (see SPECIALISE_MIN_FLOPS).
  if (2 * g.co * g.ci * taps * g.n * g.oh * g.ow < SPECIALISE_MIN_FLOPS) return null;
  return { tm, cb };
}

const gradWeightCpuKernel = defineKernel({
  name: 'conv2d_grad_weight_cpu',
  source: gradWeightCpuSource,
  workgroupSize: DW_CPU_LANES,
  uniforms: { k_per_slice: 'u32', pixels: 'u32' },
  inputs: { dy: 'f32', x: 'f32' },
  outputs: { partial: 'f32' },
});

function gradWeightCpu(dy: Tensor, x: Tensor, g: Geometry, blocks: { tm: number; cb: number }): Tensor {
  const engine = dy.engine;
  const lanes = DW_CPU_LANES;
  const { tm, cb } = blocks;
  const taps = g.kh * g.kw;
  const pixels = g.n * g.oh * g.ow;
  const tiles = Math.ceil(g.ci / cb) * Math.ceil(g.co / tm);
  const maxSplits = Math.max(1, Math.floor(pixels / (lanes * DW_CPU_MIN_PER_LANE)));
  const splits = Math.max(1, Math.min(Math.ceil(SPLIT_TARGET_WORKGROUPS / tiles), maxSplits));
  const perSlice = Math.max(lanes, Math.ceil(pixels / splits / lanes) * lanes);
  const slices = Math.max(1, Math.ceil(pixels / perSlice));
  const partial = engine.empty([slices, g.co, g.ci * taps]);
  const xc = contiguous(x);
  gradWeightCpuKernel.launch({
    name: 'conv2d_grad_weight',
    inputs: [dy, xc],
    outputs: [partial],
    uniforms: { k_per_slice: perSlice, pixels },
    workgroups: [Math.ceil(g.ci / cb), Math.ceil(g.co / tm), slices],
    defines: { CO: g.co, CI: g.ci, H: g.h, W: g.w, KH: g.kh, KW: g.kw, OH: g.oh, OW: g.ow, STRIDE: g.stride, PAD: g.pad, TM: tm, CB: cb },
    flops: 2 * g.co * g.ci * taps * pixels,
  });
  if (xc !== x) xc.dispose();
  return sumSlices(partial, slices, g);
}

/** The weight gradient [Co, Ci, KH, KW] from the split-K partial sums [slices, Co, Ci·KH·KW]. */
function sumSlices(partial: Tensor, slices: number, g: Geometry): Tensor {
  const total = slices === 1 ? partial : sum(partial, 0);
  if (total !== partial) partial.dispose();
  const dw = reshape(total, [g.co, g.ci, g.kh, g.kw]);
  if (dw !== total) total.dispose();
  return dw;
}

/** dW[co, (ci, kh, kw)] = Σ over images and pixels of dy · im2col(x), split over K and summed (GPUs: staged). */
function gradWeight(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const engine = dy.engine;
  const blocks = engine.backend.isCpuAdapter ? cpuWeightBlocks(g, engine.backend.limits.maxComputeWorkgroupStorageSize) : null;
  if (blocks) return gradWeightCpu(dy, x, g, blocks);
  const m = g.co;
  const n = g.ci * g.kh * g.kw;
  const plane = g.oh * g.ow;
  const tile = tileFor(false, m, plane);
  // K is split in units of pixel chunks (staged slabs), never mid-image.
  const units = g.n * Math.ceil(plane / tile.BK);
  const tiles = Math.ceil(m / (tile.TM * tile.WY)) * Math.ceil(n / (tile.TN * tile.WX));
  const maxSplits = Math.max(1, Math.floor((g.n * plane) / MIN_SPLIT_K));
  const splits = Math.max(1, Math.min(Math.ceil(SPLIT_TARGET_WORKGROUPS / tiles), maxSplits));
  const perSlice = Math.max(1, Math.ceil(units / splits));
  const slices = Math.max(1, Math.ceil(units / perSlice)); // an empty batch still gets one (zero) slice
  const partial = engine.empty([slices, m, n]);
  const xc = contiguous(x);
  launch({
    mode: 'DW',
    tile,
    params: {
      m, n, kc: g.ci, kh: g.kh, kw: g.kw, stride: g.stride, pad: g.pad, src_h: g.h, src_w: g.w,
      col_mid: g.kh, col_inner: g.kw,
      out_nstride: g.kh * g.kw, out_cstride: n, out_row: g.kw, out_step: 1, slice: m * n,
      images: g.n, oh: g.oh, ow: g.ow, co: g.co, k_per_slice: perSlice,
      step_h: Math.floor(tile.BK / g.ow), step_w: tile.BK % g.ow,
    },
    a: dy, b: xc, out: partial, slices,
  });
  if (xc !== x) xc.dispose();
  return sumSlices(partial, slices, g);
}

/** 2-D convolution of x [N, Ci, H, W] with weight [Co, Ci, KH, KW] (+ bias [Co]) → [N, Co, OH, OW]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const engine = checkInputs('conv2d', bias ? [x, weight, bias] : [x, weight]);
  const g = geometry(x, weight, bias, opts);
  const out = engine.noGrad(() => forward(x, weight, bias, g));
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'conv2d', inputs, (dyIn) => {
    const dy = contiguous(dyIn);
    const grads = [
      x.requiresGrad ? gradInput(dy, weight, g) : null,
      weight.requiresGrad ? gradWeight(dy, x, g) : null,
      bias?.requiresGrad ? sum(dyIn, [0, 2, 3]) : null,
    ];
    if (dy !== dyIn) dy.dispose();
    return grads.slice(0, inputs.length);
  });
}
