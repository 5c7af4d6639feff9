// The launcher behind every elementwise op: broadcasting, strided inputs, up to three operands.

import type { Engine, Tensor } from '../engine.js';
import type { Kernel } from '../runtime.js';
import { broadcastShapes, collapseDims, numel, type Shape } from '../shape.js';
import { grid1d } from '../runtime.js';
import source from './elementwise.wgsl';

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

function kernelFor(op: string, expr: string, types: string[], vec: boolean, strided: boolean, chunk: number): Kernel {
  const nIn = types.length;
  const key = `${op}\u0000${types.join(',')}|${vec}|${strided}|${chunk}|${expr}`;
  let k = kernels.get(key);
  if (!k) {
    k = {
      name: op,
      source,
      defines: {
        IN0: nIn > 0,
        IN1: nIn > 1,
        IN2: nIn > 2,
        T0: types[0] ?? 'f32',
        T1: types[1] ?? 'f32',
        T2: types[2] ?? 'f32',
        OUT_BINDING: nIn + 1,
        VEC: vec,
        STRIDED: strided,
        CHUNK: chunk,
        EXPR: expr,
      },
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
 * Units (elements or vec4s) per invocation along the innermost axis of a strided launch. A CPU adapter
 * runs integer division one lane at a time, so it pays for locating a row once per several units; a
 * GPU keeps one unit per invocation, where neighbouring invocations read neighbouring addresses.
 */
export function chunkFor(engine: Engine): number {
  return engine.backend.isCpuAdapter ? 8 : 1;
}

/**
 * The launch in vec4 units (see elementwise.wgsl), or null when the layout does not allow it:
 * the merged innermost axis must be a multiple of 4 (or the only axis, the tail then written into the
 * output's padding), and each input must walk it with stride 1 (read as vec4s: its offset and outer
 * strides must be multiples of 4 and are given in vec4s) or stride 0 (read once and splat).
 */
function vec4Layout(shape: number[], strides: number[][], offsets: number[]): { shape: number[]; strides: number[][]; offsets: number[] } | null {
  const last = shape.length - 1;
  if (shape[last] % 4 !== 0 && last > 0) return null;
  const vecInput = (s: number[]) => s[last] === 1;
  const fits = strides.every((s, k) => s[last] === 0 || (vecInput(s) && offsets[k] % 4 === 0 && s.every((v, d) => d === last || v % 4 === 0)));
  if (!fits) return null;
  return {
    shape: shape.map((d, i) => (i === last ? Math.ceil(d / 4) : d)),
    strides: strides.map((s) => (vecInput(s) ? s.map((v, d) => (d === last ? 1 : v / 4)) : s)),
    offsets: offsets.map((o, k) => (vecInput(strides[k]) ? o / 4 : o)),
  };
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
  // The output is contiguous, so merging axes that all inputs also walk contiguously keeps indexing valid.
  const flat = collapseDims(shape, [out.strides, ...inputs.map((t) => broadcastStrides(t, shape))]);
  const rank = flat.shape.length;
  if (rank > MAX_RANK) throw new Error(`${op}: rank ${rank} exceeds ${MAX_RANK} after merging contiguous axes`);
  const strides = flat.strides.slice(1);
  const offsets = inputs.map((t) => t.offset);
  const vec = vec4Layout(flat.shape, strides, offsets);
  const unitShape = vec?.shape ?? flat.shape;
  const chunk = rank > 1 ? chunkFor(engine) : 1;
  const inner = unitShape[rank - 1];
  const chunks = Math.ceil(inner / chunk);
  const invocations = (numel(unitShape) / inner) * chunks;
  u.fill(0);
  const [gx, gy] = grid1d(Math.ceil(invocations / WG));
  u[0] = invocations;
  u[1] = rank;
  u[2] = gx * WG;
  u[3] = chunks;
  for (let i = 0; i < 4; i++) f[4 + i] = scalars[i] ?? 0;
  (vec?.offsets ?? offsets).forEach((o, k) => (u[8 + k] = o));
  for (let d = 0; d < rank; d++) {
    u[12 + d] = unitShape[d];
    inputs.forEach((_, k) => (u[20 + 8 * k + d] = (vec?.strides ?? strides)[k][d]));
  }
  const type = (k: number) => (vec && strides[k]?.[rank - 1] === 1 ? 'vec4<f32>' : 'f32');
  engine.backend.dispatch({
    kernel: kernelFor(op, expr, inputs.map((_, k) => type(k)), !!vec, rank > 1, chunk),
    inputs: inputs.map((t) => t.buffer),
    outputs: [out.buffer],
    uniforms: u,
    workgroups: [gx, gy],
    bytes: (inputs.length + 1) * n * 4,
  });
  return out;
}
