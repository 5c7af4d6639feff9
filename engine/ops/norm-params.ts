// Helpers shared by the normalisation ops: checks of their per-feature parameters (weight, bias,
// running statistics) against the input they normalise.

import type { Tensor } from '../engine.js';
import { fmt } from '../shape.js';

/**
 * Throw unless `p` is null or a contiguous 1-D f32 tensor of `size` elements; `what` names it and
 * `x` is the op's input, both quoted in the error.
 */
export function checkParam(op: string, what: string, p: Tensor | null, size: number, x: Tensor): void {
  if (!p) return;
  p.assertAlive(op);
  if (p.engine !== x.engine) throw new Error(`${op}: ${what} ${p} lives on another device than ${x}`);
  if (p.ndim !== 1 || p.shape[0] !== size) {
    throw new Error(`${op}: ${what} of shape ${fmt(p.shape)} does not match input ${fmt(x.shape)} (expects [${size}])`);
  }
  if (p.dtype !== 'f32') throw new Error(`${op}: ${what} must be f32, got ${p}`);
  if (!p.isContiguous()) throw new Error(`${op}: ${what} ${p} must be contiguous`);
}
