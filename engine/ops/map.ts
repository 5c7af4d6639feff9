// The launcher behind every elementwise op: broadcasting, strided inputs, up to three operands.

import type { Engine } from '../engine.js';
import type { Kernel } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { broadcastShapes, collapseDims, numel, type Shape } from '../shape.js';
import { grid1d } from '../runtime.js';
import source from '../../shaders/elementwise.wgsl';

const MAX_RANK = 8;
const WG = 256;

export function checkInputs(op: string, inputs: Tensor[]): Engine {
  const engine = inputs[0].engine;
  for (const t of inputs) {
    t.assertAlive(op);
    if (t.engine !== engine) throw new Error(`${op}: ${t} lives on another device than ${inputs[0]}`);
  }
  return engine;
}

/** One Kernel object per variant, so the runtime finds its pipeline without hashing the defines. */
const kernels = new Map<string, Kernel>();

function kernelFor(op: string, expr: string, nIn: number, strided: boolean): Kernel {
  const key = `${op}\u0000${nIn}${strided ? 's' : 'c'}${expr}`;
  let k = kernels.get(key);
  if (!k) {
    k = {
      name: op,
      source,
      defines: { IN0: nIn > 0, IN1: nIn > 1, IN2: nIn > 2, OUT_BINDING: nIn + 1, STRIDED: strided, EXPR: expr },
    };
    kernels.set(key, k);
  }
  return k;
}

/** Uniforms are copied out at dispatch, so one block serves every launch. */
const u = new Uint32Array(4 + 4 + 4 + 8 * 4);
const f = new Float32Array(u.buffer);

/** Strides of `t` seen through a broadcast to `shape` (0 along broadcast axes). */
function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
}

/**
 * out = EXPR(a, b, c, s) elementwise, with NumPy broadcasting. `expr` is WGSL over f32 values a, b, c
 * and the vec4 of scalars s. Returns a new contiguous tensor of the broadcast shape.
 */
export function mapKernel(
  op: string,
  expr: string,
  inputs: Tensor[],
  scalars: readonly number[] = [],
  engineHint?: Engine,
  outShape?: Shape,
): Tensor {
  const engine = inputs.length ? checkInputs(op, inputs) : engineHint!;
  const shape = outShape ?? broadcastShapes(op, ...inputs.map((t) => t.shape));
  for (const t of inputs) {
    if (t.dtype !== 'f32') throw new Error(`${op}: expects f32 inputs, got ${t}`);
  }
  const out = engine.empty(shape);
  const n = numel(shape);
  if (n === 0) return out;
  const strides = inputs.map((t) => broadcastStrides(t, shape));
  const contig = strides.every((s) => s.every((v, i) => v === out.strides[i] || shape[i] === 1));
  // The output is contiguous, so merging axes that all inputs also walk contiguously keeps indexing valid.
  const flat = collapseDims(shape, [out.strides, ...strides]);
  const rank = flat.shape.length;
  if (rank > MAX_RANK) throw new Error(`${op}: rank ${rank} exceeds ${MAX_RANK} after merging contiguous axes`);
  u.fill(0);
  const [gx, gy] = grid1d(Math.ceil(n / WG));
  u[0] = n;
  u[1] = rank;
  u[2] = gx * WG;
  for (let i = 0; i < 4; i++) f[4 + i] = scalars[i] ?? 0;
  inputs.forEach((t, k) => (u[8 + k] = t.offset));
  for (let d = 0; d < rank; d++) {
    u[12 + d] = flat.shape[d];
    inputs.forEach((_, k) => (u[20 + 8 * k + d] = flat.strides[k + 1][d]));
  }
  engine.backend.dispatch({
    kernel: kernelFor(op, expr, inputs.length, !contig),
    inputs: inputs.map((t) => t.buffer),
    outputs: [out.buffer],
    uniforms: u,
    workgroups: [gx, gy],
    bytes: (inputs.length + 1) * n * 4,
  });
  return out;
}
