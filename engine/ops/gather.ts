// Indexing by i32 index tensors: indexSelect (torch.index_select), gather (torch.gather) and oneHot,
// all on gather.wgsl. index_select's forward is gather with its 1-D index broadcast (stride 0)
// over every other axis; the two backward passes (index-adds) differ, see the shader for why.
// Out-of-range indices are clamped in the kernel, since the index lives on the GPU.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt, normAxis, type Shape } from '../shape.js';
import { defineKernel } from '../kernel.js';
import { checkInputs } from './map.js';
import { contiguous } from './view.js';
import source from './gather.wgsl';

const MAX_RANK = 8;
const MODES = ['GATHER', 'SCATTER', 'LINKS', 'CHAIN', 'ONE_HOT'] as const;
type Mode = (typeof MODES)[number];

/** The kernel's uniforms besides n (see the shader); the kernel API adds the offsets and the grid. */
interface Params {
  axis?: number;
  dim?: number;
  k?: number;
  src?: Tensor;
  shape?: Shape;
  idxStrides?: Shape;
  lim?: Shape;
}

const UNIFORMS = {
  n: 'u32', rank: 'u32', axis: 'u32', dim: 'u32', k: 'u32',
  shape: 'array<vec4<u32>, 2>', src_str: 'array<vec4<u32>, 2>', idx_str: 'array<vec4<u32>, 2>', lim: 'array<vec4<u32>, 2>',
} as const;

/**
 * Two declarations, by the bindings a mode reads; the mode and the element type (f32, or u32 to move
 * integer data's bits) are a launch's template values, and each launch is named by its op.
 */
const T = { type: '${T}', dtype: 'u32' } as const;
const MODE_DEFINES = Object.fromEntries(MODES.map((m) => [m, false]));
const WITH_SOURCE = defineKernel({
  name: 'gather', source, workgroupSize: 256, uniforms: UNIFORMS,
  inputs: { src: T, idx: 'i32' }, outputs: { out: T }, strided: ['src', 'idx'], defines: MODE_DEFINES,
});
const INDEX_ONLY = defineKernel({
  name: 'gather_index', source, workgroupSize: 256, uniforms: UNIFORMS,
  inputs: { idx: 'i32' }, outputs: { out: T }, strided: ['idx'], defines: MODE_DEFINES,
});

function run(name: string, mode: Mode, inputs: Tensor[], out: Tensor, p: Params): Tensor {
  const n = out.size;
  if (n === 0) return out;
  const t = mode === 'LINKS' ? 'i32' : out.dtype === 'i32' ? 'u32' : 'f32';
  const kernel = mode === 'LINKS' || mode === 'ONE_HOT' ? INDEX_ONLY : WITH_SOURCE;
  const shape = p.shape ?? [];
  kernel.launch({
    name,
    inputs,
    outputs: [out],
    uniforms: {
      n, rank: shape.length, axis: p.axis ?? 0, dim: p.dim ?? 0, k: p.k ?? 0,
      shape, src_str: shape.map((_, d) => p.src?.strides[d] ?? 0), idx_str: p.idxStrides ?? [], lim: shape.map((_, d) => p.lim?.[d] ?? 0),
    },
    grid: { invocations: n },
    defines: { [mode]: true, T: t },
    key: `${mode}|${t}`,
  });
  return out;
}

function checkIndex(op: string, x: Tensor, index: Tensor, axis: number): number {
  checkInputs(op, [x, index]);
  if (index.dtype !== 'i32') throw new Error(`${op}: index must be an i32 tensor, got ${index}`);
  if (x.ndim === 0) throw new Error(`${op}: cannot index a 0-d tensor ${x}`);
  if (x.ndim > MAX_RANK) throw new Error(`${op}: rank ${x.ndim} exceeds ${MAX_RANK}`);
  const a = normAxis(op, axis, x.ndim);
  if (x.shape[a] === 0 && index.size > 0) throw new Error(`${op}: axis ${axis} of ${fmt(x.shape)} is empty`);
  return a;
}

/**
 * x's slices along `axis` at the positions in the 1-D i32 `index` (repeats allowed):
 * out.shape = x.shape with shape[axis] = index.length. Indices outside [0, dim) are clamped.
 */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = checkIndex('indexSelect', x, index, axis);
  if (index.ndim !== 1) throw new Error(`indexSelect: index must be 1-D, got ${fmt(index.shape)}`);
  const m = index.shape[0];
  const dim = x.shape[a];
  const shape = x.shape.map((d, i) => (i === a ? m : d));
  const idxStrides = shape.map((_, i) => (i === a ? index.strides[0] : 0));
  const out = x.engine.empty(shape, x.dtype);
  run('indexSelect', 'GATHER', [x, index], out, { axis: a, dim, src: x, shape, idxStrides });
  return record(out, 'indexSelect', [x], (g) => {
    const links = x.engine.empty([m + dim], 'i32');
    run('indexSelect_links', 'LINKS', [index], links, { dim, k: m, idxStrides: index.strides });
    const gx = x.engine.empty(x.shape);
    run('indexSelect_backward', 'CHAIN', [g, links], gx, { axis: a, dim, k: m, src: g, shape: x.shape });
    links.dispose();
    return [gx];
  });
}

/**
 * out[c] = x[c with c[axis] = index[c]] for every position c of the i32 `index` (same rank as x, no
 * larger than x off the axis); out.shape = index.shape. Indices outside [0, dim) are clamped.
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = checkIndex('gather', x, index, axis);
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== a && d > x.shape[i])) {
    throw new Error(
      `gather: index ${fmt(index.shape)} must have the rank of x ${fmt(x.shape)} and be no larger off axis ${axis}`,
    );
  }
  const dim = x.shape[a];
  const shape = [...index.shape];
  const common = { axis: a, dim, idxStrides: index.strides };
  const out = run('gather', 'GATHER', [x, index], x.engine.empty(shape, x.dtype), { ...common, src: x, shape });
  return record(out, 'gather', [x], (g) => [
    run('gather_backward', 'SCATTER', [g, index], x.engine.empty(x.shape), { ...common, k: shape[a], src: g, shape: x.shape, lim: shape }),
  ]);
}

/** f32 [...labels.shape, classes] with a 1 at each label; rows whose label is out of range stay zero. */
export function oneHot(labels: Tensor, classes: number): Tensor {
  const engine = checkInputs('oneHot', [labels]);
  if (labels.dtype !== 'i32') throw new Error(`oneHot: labels must be an i32 tensor, got ${labels}`);
  if (!Number.isInteger(classes) || classes < 1) throw new Error(`oneHot: classes must be a positive integer, got ${classes}`);
  const src = contiguous(labels);
  const out = run('oneHot', 'ONE_HOT', [src], engine.empty([...labels.shape, classes]), { k: classes });
  if (src !== labels) src.dispose();
  return out;
}
