// 2-D pooling with PyTorch's semantics (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d; floor
// mode, square kernels). Max and average pooling share one templated kernel (pool2d.wgsl);
// global average pooling is a mean.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt } from '../shape.js';
import { defineKernel, type Bindings } from '../kernel.js';
import { checkInputs } from './map.js';
import { contiguous } from './view.js';
import { mean } from './reduce.js';
import source from './pool2d.wgsl';

/** Window, stride and padding of a 2-D pooling. */
export interface Pool2dOptions {
  kernel: number;
  /** Defaults to the kernel size, as in PyTorch. */
  stride?: number;
  /** Implicit padding on every side: -inf for max pooling, zeros for average pooling. */
  padding?: number;
}

/** Options of average pooling. */
export interface AvgPool2dOptions extends Pool2dOptions {
  /** Divide by the whole window including padding (PyTorch's default) or only by its part inside the input. */
  countIncludePad?: boolean;
}

interface PoolGeometry {
  n: number; c: number; h: number; w: number; oh: number; ow: number;
  k: number; stride: number; pad: number;
}

const UNIFORMS = {
  total: 'u32',
  h: 'u32', w: 'u32',
  oh: 'u32', ow: 'u32',
  kh: 'u32', kw: 'u32',
  stride: 'u32', pad: 'u32',
  include_pad: 'u32',
} as const;

function poolKernel(name: string, inputs: Bindings, outputs: Bindings, defines: { MAX: boolean; FWD: boolean }) {
  return defineKernel({ name, source, workgroupSize: 256, uniforms: UNIFORMS, inputs, outputs, defines });
}

/** Max pooling's forward also writes, and its backward reads, each window's argmax. */
const KERNELS = {
  maxFwd: poolKernel('maxPool2d', { src: 'f32' }, { dst: 'f32', argmax: 'i32' }, { MAX: true, FWD: true }),
  maxBwd: poolKernel('maxPool2d_backward', { src: 'f32', argmax: 'i32' }, { dst: 'f32' }, { MAX: true, FWD: false }),
  avgFwd: poolKernel('avgPool2d', { src: 'f32' }, { dst: 'f32' }, { MAX: false, FWD: true }),
  avgBwd: poolKernel('avgPool2d_backward', { src: 'f32' }, { dst: 'f32' }, { MAX: false, FWD: false }),
};

function poolGeometry(op: string, x: Tensor, opts: Pool2dOptions): PoolGeometry {
  const k = opts.kernel;
  const stride = opts.stride ?? k;
  const pad = opts.padding ?? 0;
  if (x.ndim !== 4) throw new Error(`${op}: expects input [N, C, H, W], got ${fmt(x.shape)}`);
  const ints = [k, stride, pad].every(Number.isInteger) && k >= 1 && stride >= 1 && pad >= 0;
  if (!ints) throw new Error(`${op}: kernel ${k}, stride ${stride} and padding ${pad} must be non-negative integers (kernel, stride ≥ 1)`);
  if (pad > k / 2) throw new Error(`${op}: padding ${pad} must be at most half the kernel ${k}`);
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  if (oh < 1 || ow < 1) throw new Error(`${op}: kernel ${k} (padding ${pad}) is larger than the input ${fmt(x.shape)}`);
  return { n, c, h, w, oh, ow, k, stride, pad };
}

interface PoolCall {
  max: boolean;
  forward: boolean;
  src: Tensor;
  argmax?: Tensor;
  dst: Tensor;
  includePad?: boolean;
}

function dispatch(p: PoolGeometry, q: PoolCall): void {
  const kernel = q.max ? (q.forward ? KERNELS.maxFwd : KERNELS.maxBwd) : q.forward ? KERNELS.avgFwd : KERNELS.avgBwd;
  const total = q.dst.size;
  kernel.launch({
    inputs: q.max && !q.forward ? [q.src, q.argmax!] : [q.src],
    outputs: q.max && q.forward ? [q.dst, q.argmax!] : [q.dst],
    uniforms: {
      total, h: p.h, w: p.w, oh: p.oh, ow: p.ow, kh: p.k, kw: p.k, stride: p.stride, pad: p.pad,
      include_pad: q.includePad !== false,
    },
    grid: { invocations: total },
  });
}

/** The input gradient: a gather over the windows that hold each input element. */
function poolBackward(g: Tensor, p: PoolGeometry, max: boolean, argmax?: Tensor, includePad?: boolean): Tensor {
  const engine = g.engine;
  const gc = contiguous(g);
  const dx = engine.empty([p.n, p.c, p.h, p.w]);
  dispatch(p, { max, forward: false, src: gc, argmax, dst: dx, includePad });
  if (gc !== g) gc.dispose();
  return dx;
}

/** Max over each window; the gradient goes to the element each window chose. */
export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const engine = checkInputs('maxPool2d', [x]);
  const p = poolGeometry('maxPool2d', x, opts);
  const xc = engine.noGrad(() => contiguous(x));
  const out = engine.empty([p.n, p.c, p.oh, p.ow]);
  const argmax = engine.empty(out.shape, 'i32');
  dispatch(p, { max: true, forward: true, src: xc, argmax, dst: out });
  if (xc !== x) xc.dispose();
  record(out, 'maxPool2d', [x], (g) => [poolBackward(g, p, true, argmax)]);
  if (!out.requiresGrad) argmax.dispose();
  return out;
}

/** Mean over each window (zero padding; see AvgPool2dOptions.countIncludePad). */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  const engine = checkInputs('avgPool2d', [x]);
  const p = poolGeometry('avgPool2d', x, opts);
  const includePad = opts.countIncludePad ?? true;
  const xc = engine.noGrad(() => contiguous(x));
  const out = engine.empty([p.n, p.c, p.oh, p.ow]);
  dispatch(p, { max: false, forward: true, src: xc, dst: out, includePad });
  if (xc !== x) xc.dispose();
  return record(out, 'avgPool2d', [x], (g) => [poolBackward(g, p, false, undefined, includePad)]);
}

/** [N, C, H, W] → [N, C]: the mean over each channel's plane (the head of ResNets and ConvNets). */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.ndim !== 4) throw new Error(`globalAvgPool: expects input [N, C, H, W], got ${fmt(x.shape)}`);
  return mean(x, [2, 3]);
}

/**
 * F.adaptive_avg_pool2d for output sizes whose windows are all alike: 1 (a global mean, kept as
 * [N, C, 1, 1]) or any size that divides the input, where it equals avgPool2d with kernel = stride.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number): Tensor {
  if (x.ndim !== 4) throw new Error(`adaptiveAvgPool2d: expects input [N, C, H, W], got ${fmt(x.shape)}`);
  if (outputSize === 1) return mean(x, [2, 3], true);
  const [, , h, w] = x.shape;
  if (h !== w || h % outputSize !== 0) {
    throw new Error(`adaptiveAvgPool2d: output size ${outputSize} must be 1 or divide the square input ${fmt(x.shape)}`);
  }
  const k = h / outputSize;
  return avgPool2d(x, { kernel: k, stride: k });
}
