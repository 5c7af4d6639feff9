// Layer normalisation over the last axis (F.layer_norm with normalized_shape = [D], as in ViT),
// with optional affine weight and bias. Fused kernels in layer_norm.wgsl.

import type { Engine, Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt } from '../shape.js';
import { rowLayout, type RowLayout } from './row-layout.js';
import { defineKernel, type BindingSpec } from '../kernel.js';
import { checkInputs } from './map.js';
import { contiguous, reshape, slice } from './view.js';
import { sum } from './broadcast.js';
import { checkParam } from './norm-params.js';
import source from './layer_norm.wgsl';

/** Rows per partial sum in the weight/bias gradient: enough work per thread, enough chunks to fill a GPU. */
const CHUNK = 64;

interface Saved {
  x: Tensor;
  mean: Tensor;
  rstd: Tensor;
  rows: number;
  d: number;
}

const UNIFORMS = { rows: 'u32', d: 'u32', eps: 'f32' } as const;
const BACKWARD_INPUTS = { x: 'f32', g: 'f32', mean: 'f32', rstd: 'f32' } as const;

/** Weight and bias: optional bindings (the source tests HAS_W, HAS_B), given when the layer has them. */
const OPTIONAL: BindingSpec = { type: 'f32', dtype: 'f32', optional: true };

/** The forward kernel: x, then weight and bias when given. */
const FORWARD = defineKernel({
  name: 'layer_norm',
  source,
  workgroupSize: 64,
  uniforms: UNIFORMS,
  inputs: { x: 'f32', w: OPTIONAL, b: OPTIONAL },
  outputs: { out: 'f32', mean_out: 'f32', rstd_out: 'f32' },
  defines: { FORWARD: true, BACKWARD_W: false, CHUNK },
});
/** The input gradient's kernel: x, g and the saved statistics, then the weight when given. */
const BACKWARD_X = defineKernel({
  name: 'layer_norm_backward',
  source,
  workgroupSize: 64,
  uniforms: UNIFORMS,
  inputs: { ...BACKWARD_INPUTS, w: OPTIONAL },
  outputs: { out: 'f32' },
  defines: { FORWARD: false, BACKWARD_W: false, HAS_B: false, CHUNK },
});
const BACKWARD_W = defineKernel({
  name: 'layer_norm_backward_weight',
  source,
  workgroupSize: 256,
  uniforms: UNIFORMS,
  inputs: BACKWARD_INPUTS,
  outputs: { out: 'f32' },
  defines: { TPR: 1, SHARED: false, FORWARD: false, BACKWARD_W: true, HAS_W: false, HAS_B: false, CHUNK },
});

/** A row kernel's launch at `layout`, its variant named by the layout and which optional bindings are given. */
function rowLaunch(layout: RowLayout, key: string) {
  return { workgroupSize: layout.wg, grid: { workgroups: layout.groups }, defines: layout.defines, key: `${layout.key}|${key}` };
}

function forward(engine: Engine, s: Saved, w: Tensor | null, b: Tensor | null, eps: number): Tensor {
  const out = engine.empty(s.x.shape);
  FORWARD.launch({
    inputs: [s.x, w, b],
    outputs: [out, s.mean, s.rstd],
    uniforms: { rows: s.rows, d: s.d, eps },
    ...rowLaunch(rowLayout(engine, s.rows, s.d), `${+!!w}${+!!b}`),
  });
  return out;
}

function backwardX(engine: Engine, s: Saved, g: Tensor, w: Tensor | null): Tensor {
  const dx = engine.empty(s.x.shape);
  BACKWARD_X.launch({
    inputs: [s.x, g, s.mean, s.rstd, w],
    outputs: [dx],
    uniforms: { rows: s.rows, d: s.d, eps: 0 },
    ...rowLaunch(rowLayout(engine, s.rows, s.d), `${+!!w}`),
  });
  return dx;
}

/** [dWeight, dBias], each [D]: per-chunk column sums in one kernel, then a sum over the chunks. */
function backwardWB(engine: Engine, s: Saved, g: Tensor): [Tensor, Tensor] {
  const chunks = Math.max(Math.ceil(s.rows / CHUNK), 1);
  const partial = engine.empty([chunks, 2, s.d]);
  BACKWARD_W.launch({
    inputs: [s.x, g, s.mean, s.rstd],
    outputs: [partial],
    uniforms: { rows: s.rows, d: s.d, eps: 0 },
    workgroups: [Math.ceil(s.d / 256), chunks],
  });
  const both = sum(partial, 0);
  return [reshape(slice(both, 0, 0, 1), [s.d]), reshape(slice(both, 0, 1, 2), [s.d])];
}

/** Layer normalisation over the last axis, with optional weight and bias. */
export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const op = 'layer_norm';
  const engine = checkInputs(op, [x]);
  if (x.ndim < 1 || x.dtype !== 'f32') throw new Error(`${op}: expects an f32 input of rank ≥ 1, got ${x}`);
  const d = x.shape[x.ndim - 1];
  checkParam(op, 'weight', weight, d, x);
  checkParam(op, 'bias', bias, d, x);
  if (d === 0) throw new Error(`${op}: cannot normalise an empty last axis of ${fmt(x.shape)}`);
  const src = engine.noGrad(() => contiguous(x));
  const rows = src.size / d;
  const saved: Saved = { x: src, mean: engine.empty([rows]), rstd: engine.empty([rows]), rows, d };
  const y = forward(engine, saved, weight, bias, eps);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const out = record(y, op, inputs, (g) => {
    const gc = contiguous(g);
    const grads: (Tensor | null)[] = [x.requiresGrad ? backwardX(engine, saved, gc, weight) : null];
    if (weight || bias) {
      const [dw, db] = backwardWB(engine, saved, gc);
      if (weight) grads.push(dw);
      if (bias) grads.push(db);
    }
    return grads;
  });
  if (!out.node) {
    if (src !== x) src.dispose();
    saved.mean.dispose();
    saved.rstd.dispose();
  }
  return out;
}
