// Views share their input's storage (no kernel): reshape of a contiguous tensor, permute/transpose,
// slice, expand, (un)squeeze. The copies that remain (contiguous, clone, copyInto) use one strided
// copy kernel.

import { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { collapseDims, contiguousStrides, fmt, normAxis, numel, type Shape } from '../shape.js';
import { defineKernel, type KernelDef } from '../kernel.js';
import { checkInputs, chunkFor } from './map.js';
import source from './copy_into.wgsl';

/** A new tensor object over x's storage (shares memory, no tape). */
export function alias(x: Tensor, shape: Shape, strides: Shape, offset: number): Tensor {
  x.assertAlive('view');
  x.storage.refs++;
  return new Tensor(x.engine, x.storage, shape, strides, offset, x.dtype);
}

const UNIFORMS = {
  n: 'u32', rank: 'u32', chunks: 'u32', off: 'vec4<u32>',
  shape: 'array<vec4<u32>, 2>', src_str: 'array<vec4<u32>, 2>', dst_str: 'array<vec4<u32>, 2>',
} as const;

/** By VEC: the copy moves vec4s of 32-bit words, or single words. */
const COPY: Record<'vec' | 'word', KernelDef<typeof UNIFORMS>> = {
  vec: declareCopy('vec4<u32>', true),
  word: declareCopy('u32', false),
};

function declareCopy(unit: 'vec4<u32>' | 'u32', vec: boolean): KernelDef<typeof UNIFORMS> {
  return defineKernel({
    name: 'copy',
    source,
    workgroupSize: 256,
    uniforms: UNIFORMS,
    inputs: { src: unit },
    outputs: { dst: unit },
    strided: ['src', 'dst'],
    defines: { VEC: vec },
  });
}

/** dst (any strided view) ← src, elementwise; shapes must match. Writes in place into dst's storage. */
export function copyInto(dst: Tensor, src: Tensor): void {
  copy(dst, src, false);
}

/**
 * The copy behind copyInto and clone. `freshDst`: dst is a whole new tensor at offset 0, so a vec4
 * copy may write past its last element into the pool buffer's padding (sizes are multiples of 64 bytes).
 */
function copy(dst: Tensor, src: Tensor, freshDst: boolean): void {
  const engine = checkInputs('copyInto', [dst, src]);
  if (dst.shape.length !== src.shape.length || dst.shape.some((d, i) => d !== src.shape[i])) {
    throw new Error(`copyInto: destination ${fmt(dst.shape)} and source ${fmt(src.shape)} differ`);
  }
  const n = src.size;
  if (n === 0) return;
  const flat = collapseDims(src.shape, [src.strides, dst.strides]);
  const rank = flat.shape.length;
  if (rank > 8) throw new Error(`copyInto: rank ${rank} exceeds 8 after merging contiguous axes`);
  const last = rank - 1;
  const offsets = [src.offset, dst.offset];
  const vec =
    flat.strides.every((s) => s[last] === 1 && s.every((v, d) => d === last || v % 4 === 0)) &&
    offsets.every((o) => o % 4 === 0) &&
    (flat.shape[last] % 4 === 0 || (rank === 1 && freshDst));
  const unit = vec ? 4 : 1;
  const shape = flat.shape.map((d, i) => (i === last ? Math.ceil(d / unit) : d));
  const chunk = rank > 1 ? chunkFor(engine) : 1;
  const chunks = Math.ceil(shape[last] / chunk);
  const invocations = (numel(shape) / shape[last]) * chunks;
  const kernel = vec ? COPY.vec : COPY.word;
  const per = (d: number) => (d === last ? 1 : unit);
  kernel.launch({
    inputs: [src],
    outputs: [dst],
    uniforms: {
      n: invocations, rank, chunks, off: [src.offset / unit, dst.offset / unit, 0, 0], shape,
      src_str: flat.strides[0].map((s, d) => s / per(d)), dst_str: flat.strides[1].map((s, d) => s / per(d)),
    },
    grid: { invocations },
    defines: { STRIDED: rank > 1, CHUNK: chunk },
  });
}

/** A contiguous copy (always a new tensor), differentiable. */
export function clone(x: Tensor): Tensor {
  const out = x.engine.empty(x.shape, x.dtype);
  copy(out, x, true);
  return record(out, 'clone', [x], (g) => [g]);
}

/** x itself when contiguous, else a contiguous copy. */
export function contiguous(x: Tensor): Tensor {
  return x.isContiguous() ? x : clone(x);
}

/** x with a new shape of the same element count (one -1 dimension is inferred). */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const infer = shape.indexOf(-1);
  const s = [...shape];
  if (infer >= 0) {
    const known = numel(s.filter((_, i) => i !== infer));
    s[infer] = known === 0 ? 0 : x.size / known;
  }
  if (numel(s) !== x.size || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
  }
  const src = contiguous(x);
  const out = alias(src, s, contiguousStrides(s), src.offset);
  return record(out, 'reshape', [src], (g) => [reshape(g, [...src.shape])]);
}

/** A view with the axes in the order `dims`. */
export function permute(x: Tensor, dims: number[]): Tensor {
  if (dims.length !== x.ndim) throw new Error(`permute: ${dims.length} dims given for ${x}`);
  const d = dims.map((a) => normAxis('permute', a, x.ndim));
  if (new Set(d).size !== d.length) throw new Error(`permute: dims ${fmt(dims)} repeat an axis`);
  const out = alias(x, d.map((i) => x.shape[i]), d.map((i) => x.strides[i]), x.offset);
  const inv = new Array<number>(d.length);
  d.forEach((a, i) => (inv[a] = i));
  return record(out, 'permute', [x], (g) => [permute(g, inv)]);
}

/** A view with axes a and b swapped. */
export function transpose(x: Tensor, a: number, b: number): Tensor {
  const dims = [...x.shape.keys()];
  const i = normAxis('transpose', a, x.ndim);
  const j = normAxis('transpose', b, x.ndim);
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return permute(x, dims);
}

/** x[..., start:end:step, ...] along `axis` (a view). */
export function slice(x: Tensor, axis: number, start: number, end: number, step = 1): Tensor {
  const a = normAxis('slice', axis, x.ndim);
  const dim = x.shape[a];
  const lo = Math.min(Math.max(start < 0 ? start + dim : start, 0), dim);
  const hi = Math.min(Math.max(end < 0 ? end + dim : end, lo), dim);
  if (!Number.isInteger(step) || step < 1) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const shape = [...x.shape];
  shape[a] = Math.ceil((hi - lo) / step);
  const strides = [...x.strides];
  strides[a] *= step;
  const out = alias(x, shape, strides, x.offset + lo * x.strides[a]);
  return record(out, 'slice', [x], (g) => {
    const gx = x.engine.zeros(x.shape);
    const window = slice(gx, a, lo, hi, step);
    copyInto(window, g);
    window.dispose();
    return [gx];
  });
}

/** x with a new axis of size 1 at `axis`. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.ndim + 1);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

/** x without axis `axis` when its size is 1, or without every axis of size 1 when no axis is given. */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis('squeeze', axis, x.ndim);
  if (x.shape[a] !== 1) return x;
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

/** x with axes start to end (both included) merged into one. */
export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis('flatten', start, x.ndim);
  const e = normAxis('flatten', end, x.ndim);
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}
