// Reductions over any axis (or several): sum, mean, max, argmax, logsumexp, var. One kernel
// (reduce.wgsl) reduces one axis; several axes are reduced one after another.

import type { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { fmt, normAxis, numel, sameShape, type Shape } from '../shape.js';
import { grid1d } from '../runtime.js';
import { checkInputs } from './map.js';
import { contiguous, expand, reshape } from './view.js';
import { div, eq, exp, mul, sub } from './elementwise.js';
import source from './reduce.wgsl';

type ReduceOp = 'sum' | 'max' | 'argmax' | 'logsumexp';
export type Axes = number | number[] | undefined;

/** Reduce one axis, keeping it as size 1. No tape. */
function reduceAxis(op: ReduceOp, x: Tensor, axis: number): Tensor {
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
  const [gx, gy] = row ? grid1d(outer) : grid1d(Math.ceil((outer * inner) / 256));
  const u = new Uint32Array([outer, r, inner, src.offset, row ? gx : gx * 256, 0, 0, 0]);
  engine.backend.dispatch({
    kernel: {
      name: op,
      source,
      defines: {
        ROW: row,
        IS_SUM: op === 'sum',
        IS_LSE: op === 'logsumexp',
        IS_ARGMAX: op === 'argmax',
        OUT_T: op === 'argmax' ? 'i32' : 'f32',
      },
    },
    inputs: [src.buffer],
    outputs: [out.buffer],
    uniforms: u,
    workgroups: [gx, gy],
  });
  if (src !== x) src.dispose();
  return out;
}

function normAxes(op: string, x: Tensor, axes: Axes): number[] {
  if (axes === undefined) return [...x.shape.keys()];
  const list = (Array.isArray(axes) ? axes : [axes]).map((a) => normAxis(op, a, x.ndim));
  return [...new Set(list)].sort((a, b) => a - b);
}

function keptShape(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function dropAxes(t: Tensor, shape: Shape, axes: number[], keepdim: boolean): Tensor {
  return keepdim ? t : reshape(t, shape.filter((_, i) => !axes.includes(i)));
}

/** Reduce several axes with an associative op, largest axis first. */
function reduceMany(op: 'sum' | 'max', x: Tensor, axes: number[]): Tensor {
  let cur = x;
  for (let k = axes.length - 1; k >= 0; k--) {
    const next = reduceAxis(op, cur, axes[k]);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur === x ? contiguous(x) : cur;
}

export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('sum', x, axes);
  const kept = keptShape(x, ax);
  const out = record(reduceMany('sum', x, ax), 'sum', [x], (g) => [expand(reshape(g, kept), [...x.shape])]);
  return dropAxes(out, kept, ax, keepdim);
}

export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('mean', x, axes);
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  return div(sum(x, ax, keepdim), count);
}

/** Max over axes (values). The gradient goes to every position equal to the max, shared among ties. */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('max', x, axes);
  const kept = keptShape(x, ax);
  const m = reduceMany('max', x, ax);
  const out = record(m, 'max', [x], (g) => {
    const mask = eq(x, m);
    const count = reduceMany('sum', mask, ax);
    return [mul(mask, div(reshape(g, kept), count))];
  });
  return dropAxes(out, kept, ax, keepdim);
}

/** Index of the maximum along one axis (i32), lowest index among ties. */
export function argmax(x: Tensor, axis: number, keepdim = false): Tensor {
  const a = normAxis('argmax', axis, x.ndim);
  const out = reduceAxis('argmax', x, a);
  return dropAxes(out, out.shape, [a], keepdim);
}

/** log Σ exp(x) along one axis, computed stably (online max). */
export function logsumexp(x: Tensor, axis: number, keepdim = false): Tensor {
  const a = normAxis('logsumexp', axis, x.ndim);
  const lse = reduceAxis('logsumexp', x, a);
  const out = record(lse, 'logsumexp', [x], (g) => [mul(exp(sub(x, lse)), g)]);
  return dropAxes(out, lse.shape, [a], keepdim);
}

/** Variance over axes; `correction` 1 gives the unbiased estimate (PyTorch's default), 0 the biased one. */
export function variance(x: Tensor, axes?: Axes, keepdim = false, correction = 1): Tensor {
  const ax = normAxes('var', x, axes);
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  const centred = sub(x, mean(x, ax, true));
  return div(sum(mul(centred, centred), ax, keepdim), Math.max(count - correction, 0));
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
