// Reductions over any axis (or several): mean, max, argmax, logsumexp, var, with sum (broadcast.ts).
// One kernel (reduce.wgsl) reduces one axis; several axes are reduced one after another.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { normAxis } from '../shape.js';
import { reshape } from './view.js';
import { dropAxes, keptShape, normAxes, reduceAxis, reduceMany, sum, type Axes } from './broadcast.js';
import { div, eq, exp, mul, sub } from './elementwise.js';

/** Mean over `axes` (all when absent), keeping them as size 1 when `keepdim`. */
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
