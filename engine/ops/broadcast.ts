// Broadcasting and its adjoint: expand (a stride-0 view) whose gradient is sumTo, and sum whose
// gradient is expand, on the reduction kernel (reduce.wgsl) that reduce.ts's other reductions share.
// They sit below the elementwise ops, whose broadcasting backward needs sumTo.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt, normAxis, numel, sameShape, type Shape } from '../shape.js';
import { defineKernel, type KernelDef } from '../kernel.js';
import { checkInputs } from './map.js';
import { alias, contiguous, reshape } from './view.js';
import source from './reduce.wgsl';

/** Reductions the reduce kernel implements. */
export type ReduceOp = 'sum' | 'max' | 'argmax' | 'logsumexp';

const UNIFORMS = { outer: 'u32', r: 'u32', inner: 'u32' } as const;

/** One declaration per reduction: argmax writes i32 indices, the others f32 values. */
const KERNELS = {} as Record<ReduceOp, KernelDef<typeof UNIFORMS>>;
for (const op of ['sum', 'max', 'argmax', 'logsumexp'] as const) {
  const outT = op === 'argmax' ? 'i32' : 'f32';
  KERNELS[op] = defineKernel({
    name: op,
    source,
    workgroupSize: 256,
    uniforms: UNIFORMS,
    inputs: { x: 'f32' },
    outputs: { out: outT },
    defines: { IS_SUM: op === 'sum', IS_LSE: op === 'logsumexp', IS_ARGMAX: op === 'argmax', OUT_T: outT },
  });
}
/** Axes of a reduction: one, several, or all (undefined). */
export type Axes = number | number[] | undefined;

/** Reduce one axis, keeping it as size 1. No tape. */
export function reduceAxis(op: ReduceOp, x: Tensor, axis: number): Tensor {
  const engine = checkInputs(op, [x]);
  const src = contiguous(x);
  const outer = numel(src.shape.slice(0, axis));
  const r = src.shape[axis];
  const inner = numel(src.shape.slice(axis + 1));
  const outShape = src.shape.map((d, i) => (i === axis ? 1 : d));
  const out = engine.empty(outShape, op === 'argmax' ? 'i32' : 'f32');
  if (r === 0 && op !== 'sum') throw new Error(`${op}: cannot reduce an empty axis of ${fmt(x.shape)}`);
  // A workgroup per row only for long rows: its barrier tree costs far more than a short serial walk
  // (on lavapipe, globalAvgPool of [64, 512, 4, 4] — 131072 rows of 4 — took 5.5 s as ROW, 10 ms not).
  const row = inner === 1 && r > 64;
  const kernel = KERNELS[op];
  kernel.launch({
    inputs: [src],
    outputs: [out],
    uniforms: { outer, r, inner },
    grid: row ? { workgroups: outer } : { invocations: outer * inner },
    defines: { ROW: row },
  });
  if (src !== x) src.dispose();
  return out;
}

/** Reduction axes as sorted non-negative indices (negative ones count from the end); all axes when undefined. */
export function normAxes(op: string, x: Tensor, axes: Axes): number[] {
  if (axes === undefined) return [...x.shape.keys()];
  const list = (Array.isArray(axes) ? axes : [axes]).map((a) => normAxis(op, a, x.ndim));
  return [...new Set(list)].sort((a, b) => a - b);
}

/** x's shape with the given axes set to 1. */
export function keptShape(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** A reduced tensor of kept shape reshaped without the reduced axes, unless keepdim. */
export function dropAxes(t: Tensor, shape: Shape, axes: number[], keepdim: boolean): Tensor {
  return keepdim ? t : reshape(t, shape.filter((_, i) => !axes.includes(i)));
}

/** Reduce several axes with an associative op, largest axis first. */
export function reduceMany(op: 'sum' | 'max', x: Tensor, axes: number[]): Tensor {
  let cur = x;
  for (let k = axes.length - 1; k >= 0; k--) {
    const next = reduceAxis(op, cur, axes[k]);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur === x ? contiguous(x) : cur;
}

/** Sum over `axes` (all when absent), keeping them as size 1 when `keepdim`. */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('sum', x, axes);
  const kept = keptShape(x, ax);
  const out = record(reduceMany('sum', x, ax), 'sum', [x], (g) => [expand(reshape(g, kept), [...x.shape])]);
  return dropAxes(out, kept, ax, keepdim);
}

/** Broadcast to a larger shape without copying (stride 0 along new or size-1 axes). */
export function expand(x: Tensor, shape: number[]): Tensor {
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new Error(`expand: cannot expand ${fmt(x.shape)} to fewer dims ${fmt(shape)}`);
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const sd = x.shape[i - lead];
    if (sd === d) return x.strides[i - lead];
    if (sd === 1) return 0;
    throw new Error(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  });
  const out = alias(x, shape, strides, x.offset);
  return record(out, 'expand', [x], (g) => [sumTo(g, x.shape)]);
}

/** Sum a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = sum(g, axes, true);
  return reshape(s, [...shape]);
}
