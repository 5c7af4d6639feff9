// Helpers shared by the normalisation ops: checks of their per-feature parameters, and binding
// numbers for kernels whose optional inputs (weight, bias, running statistics) come and go.

import type { Tensor } from '../engine.js';
import { fmt } from '../shape.js';
import type { Defines } from '../shader.js';

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

/**
 * Binding numbers for the storage buffers `names` (in binding order after the uniform block), as
 * B_<NAME> defines; an absent (null) buffer gets no binding and the following ones move up. Absent
 * names still get a define (0), since a template names every B_* in all its variants.
 */
export function bindings(names: Record<string, Tensor | null | boolean>): { defines: Defines; count: number } {
  const defines: Defines = {};
  let next = 1;
  for (const [name, present] of Object.entries(names)) defines[`B_${name}`] = present ? next++ : 0;
  return { defines, count: next - 1 };
}
