// Layer normalisation over the last axis (F.layer_norm with normalized_shape = [D], as in ViT),
// with optional affine weight and bias. Fused kernels in layer_norm.wgsl.

import type { Engine, Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt } from '../shape.js';
import { rowLayout } from './row-layout.js';
import { checkInputs } from './map.js';
import { contiguous, reshape, slice } from './view.js';
import { sum } from './broadcast.js';
import { bindings, checkParam } from './norm-params.js';
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

function uniforms(s: Saved, eps: number, rowWidth: number, g: Tensor | null, w: Tensor | null, b: Tensor | null): Uint32Array {
  const u = new Uint32Array(8);
  u.set([s.rows, s.d, rowWidth, 0, s.x.offset, g?.offset ?? 0, w?.offset ?? 0, b?.offset ?? 0]);
  new Float32Array(u.buffer)[3] = eps;
  return u;
}

function forward(engine: Engine, s: Saved, w: Tensor | null, b: Tensor | null, eps: number): Tensor {
  const out = engine.empty(s.x.shape);
  const bind = bindings({ X: true, W: w, B: b, OUT: true, MEAN: true, RSTD: true });
  const layout = rowLayout(engine, s.rows, s.d);
  const [gx, gy] = layout.workgroups;
  engine.backend.dispatch({
    kernel: {
      name: 'layer_norm',
      source,
      defines: { ...bind.defines, ...layout.defines, FORWARD: true, BACKWARD_W: false, HAS_W: !!w, HAS_B: !!b, CHUNK },
    },
    inputs: [s.x, w, b].filter((t): t is Tensor => !!t).map((t) => t.buffer),
    outputs: [out.buffer, s.mean.buffer, s.rstd.buffer],
    uniforms: uniforms(s, eps, gx, null, w, b),
    workgroups: [gx, gy],
  });
  return out;
}

function backwardX(engine: Engine, s: Saved, g: Tensor, w: Tensor | null): Tensor {
  const dx = engine.empty(s.x.shape);
  const bind = bindings({ X: true, G: true, MEAN: true, RSTD: true, W: w, OUT: true, B: false });
  const layout = rowLayout(engine, s.rows, s.d);
  const [gx, gy] = layout.workgroups;
  engine.backend.dispatch({
    kernel: {
      name: 'layer_norm_backward',
      source,
      defines: { ...bind.defines, ...layout.defines, FORWARD: false, BACKWARD_W: false, HAS_W: !!w, HAS_B: false, CHUNK },
    },
    inputs: [s.x, g, s.mean, s.rstd, ...(w ? [w] : [])].map((t) => t.buffer),
    outputs: [dx.buffer],
    uniforms: uniforms(s, 0, gx, g, w, null),
    workgroups: [gx, gy],
  });
  return dx;
}

/** [dWeight, dBias], each [D]: per-chunk column sums in one kernel, then a sum over the chunks. */
function backwardWB(engine: Engine, s: Saved, g: Tensor): [Tensor, Tensor] {
  const chunks = Math.max(Math.ceil(s.rows / CHUNK), 1);
  const partial = engine.empty([chunks, 2, s.d]);
  const bind = bindings({ X: true, G: true, MEAN: true, RSTD: true, OUT: true, W: false, B: false });
  engine.backend.dispatch({
    kernel: {
      name: 'layer_norm_backward_weight',
      source,
      defines: { ...bind.defines, TPR: 1, WG: 256, SHARED: false, FORWARD: false, BACKWARD_W: true, HAS_W: false, HAS_B: false, CHUNK },
    },
    inputs: [s.x, g, s.mean, s.rstd].map((t) => t.buffer),
    outputs: [partial.buffer],
    uniforms: uniforms(s, 0, 0, g, null, null),
    workgroups: [Math.ceil(s.d / 256), chunks],
  });
  const both = sum(partial, 0);
  return [reshape(slice(both, 0, 0, 1), [s.d]), reshape(slice(both, 0, 1, 2), [s.d])];
}

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
