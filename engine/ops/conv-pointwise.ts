// conv2d's pointwise kernel (conv2d_pointwise.wgsl): on CPU adapters, the forward of a 1×1 convolution
// with stride above 1, no padding and at most 16 output channels (a narrow ResNet's downsampling
// shortcut). ops/conv.ts asks here first and falls back to its GEMM when this returns null.

import type { Tensor } from '../engine.js';
import { defineKernel } from '../kernel.js';
import type { Geometry } from './conv-direct.js';
import source from './conv2d_pointwise.wgsl';

const kernel = defineKernel({
  name: 'conv2d_pointwise',
  source,
  workgroupSize: 64,
  uniforms: { invocations: 'u32' },
  inputs: { src: 'f32', w: 'f32', bias: { type: 'f32', dtype: 'f32', optional: true } },
  outputs: { dst: { type: '${TD}', dtype: 'f32' } },
});

/**
 * The most output channels this kernel takes: an invocation holds a vec4 accumulator for each, and
 * gathers each input pixel once for all of them. Measured on lavapipe (bench, 3 runs in turn): the demo's layer2
 * shortcut (8 → 16 channels, 28² → 14²) 0.37-0.43 ms against the GEMM's 0.56-0.74; with 32 and 64
 * output channels (two and four blocks, each gathering the input again) the GEMM was as fast or
 * faster (0.36-0.63 against 0.49-0.70 ms, 0.34-0.43 against 0.35-0.61), so those keep it.
 */
const MAX_CO = 16;
/** The channel loop is unrolled (its bound a template value): a few dozen input channels at most. */
const MAX_CI = 64;

/** x contiguous [n, ci, h, w]; the weight [co, ci, 1, 1] contiguous. */
export function pointwiseForward(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, g: Geometry): Tensor | null {
  const pointwise = g.kh === 1 && g.kw === 1 && g.pad === 0 && g.stride > 1;
  if (!x.engine.backend.isCpuAdapter || !pointwise || g.co > MAX_CO || g.ci > MAX_CI || !weight.isContiguous()) return null;
  const plane = g.oh * g.ow;
  const dst = x.engine.empty([g.n, g.co, g.oh, g.ow]);
  const quads = Math.ceil(plane / 4);
  const vec = plane % 4 === 0 && dst.offset % 4 === 0;
  const invocations = g.n * quads;
  kernel.launch({
    name: 'conv2d',
    inputs: [x, weight, bias],
    outputs: [dst],
    uniforms: { invocations },
    grid: { invocations },
    defines: {
      SRC_H: g.h, SRC_W: g.w, DST_C: g.co, DST_W: g.ow, PLANE: plane, S: g.stride,
      VEC_OUT: vec, CI: g.ci, TD: vec ? 'vec4<f32>' : 'f32',
    },
    flops: 2 * g.n * g.co * g.ci * plane,
  });
  return dst;
}
