// Bicubic resize (F.interpolate(mode='bicubic', align_corners=False)) with its backward, both in
// interpolate.wgsl. ViTs use it to fit the learned positional embedding to the patch grid of
// each input size (DINO's interpolate_pos_encoding).

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt } from '../shape.js';
import { defineKernel } from '../kernel.js';
import { checkInputs } from './map.js';
import source from './interpolate.wgsl';

const OP = 'interpolate_bicubic';

function declare(name: string, forward: boolean) {
  return defineKernel({
    name,
    source,
    workgroupSize: 256,
    uniforms: {
      n: 'u32', channels: 'u32', src_stride: 'vec4<u32>',
      in_h: 'u32', in_w: 'u32', out_h: 'u32', out_w: 'u32', ratio_h: 'f32', ratio_w: 'f32',
    },
    inputs: { src: 'f32' },
    outputs: { dst: 'f32' },
    strided: ['src'],
    defines: { FORWARD: forward },
  });
}

const FORWARD = declare(OP, true);
const BACKWARD = declare(`${OP}_backward`, false);

/** Output size and mode of interpolate. */
export interface InterpolateOptions {
  /**
   * PyTorch's scale_factor (one value, or [h, w]). Given it, the source coordinate of output pixel o
   * is (o + 0.5) / scale − 0.5, even when the output size is not in/scale exactly, which is what
   * F.interpolate(scale_factor=...) does (recompute_scale_factor unset). Without it, in/out is used,
   * as F.interpolate(size=...) does. See bicubicOutputSize for the size PyTorch picks for a scale.
   */
  scaleFactor?: number | [number, number];
}

/** The output length PyTorch derives from a scale factor: ⌊in · scale⌋, computed in float64. */
export function bicubicOutputSize(inSize: number, scale: number): number {
  return Math.floor(inSize * scale);
}

interface Geometry {
  n: number;
  c: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  /** Source pixels per output pixel, rounded to f32 as PyTorch's kernel computes them. */
  ratioH: number;
  ratioW: number;
}

function geometry(x: Tensor, outH: number, outW: number, opts: InterpolateOptions): Geometry {
  if (x.ndim !== 4 || x.dtype !== 'f32') throw new Error(`${OP}: expects an f32 input [N, C, H, W], got ${x}`);
  const [n, c, inH, inW] = x.shape;
  const sizeOk = (v: number) => Number.isInteger(v) && v >= 1;
  if (!sizeOk(outH) || !sizeOk(outW)) {
    throw new Error(`${OP}: output size ${fmt([outH, outW])} must be positive integers (input ${fmt(x.shape)})`);
  }
  if (inH === 0 || inW === 0) throw new Error(`${OP}: cannot resize an empty image ${fmt(x.shape)}`);
  const s = opts.scaleFactor;
  const [sh, sw] = s === undefined ? [undefined, undefined] : typeof s === 'number' ? [s, s] : s;
  for (const v of [sh, sw]) {
    if (v !== undefined && !(v > 0 && Number.isFinite(v))) {
      throw new Error(`${OP}: scale factor ${fmt(typeof s === 'number' ? [s] : s!)} must be positive and finite`);
    }
  }
  return {
    n, c, inH, inW, outH, outW,
    ratioH: Math.fround(sh === undefined ? inH / outH : 1 / sh),
    ratioW: Math.fround(sw === undefined ? inW / outW : 1 / sw),
  };
}

/** One dispatch over `count` invocations that read `src` (strided) and write the contiguous `dst`. */
function launch(forward: boolean, src: Tensor, dst: Tensor, g: Geometry): void {
  const count = dst.size;
  if (count === 0) return;
  const kernel = forward ? FORWARD : BACKWARD;
  kernel.launch({
    inputs: [src],
    outputs: [dst],
    uniforms: {
      n: count, channels: g.c, src_stride: src.strides,
      in_h: g.inH, in_w: g.inW, out_h: g.outH, out_w: g.outW, ratio_h: g.ratioH, ratio_w: g.ratioW,
    },
    grid: { invocations: count },
  });
}

/**
 * Resize x [N, C, H, W] to [N, C, outH, outW] by bicubic interpolation, PyTorch's
 * F.interpolate(x, size=(outH, outW), mode='bicubic', align_corners=False), or with
 * `scaleFactor` the scale_factor form (see InterpolateOptions). x may be any strided view.
 */
export function interpolateBicubic(x: Tensor, outH: number, outW: number, opts: InterpolateOptions = {}): Tensor {
  const engine = checkInputs(OP, [x]);
  const g = geometry(x, outH, outW, opts);
  const out = engine.empty([g.n, g.c, outH, outW]);
  launch(true, x, out, g);
  return record(out, OP, [x], (grad) => {
    const dx = engine.empty(x.shape);
    launch(false, grad, dx, g);
    return [dx];
  });
}
