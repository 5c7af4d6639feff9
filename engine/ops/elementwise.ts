// Elementwise ops, each a WGSL expression for the shared map kernel (elementwise.wgsl) with
// its backward right beside it. Gradients of broadcast inputs are summed back to the input's shape.

import type { Engine, Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { mapKernel } from './map.js';
import { sumTo } from './broadcast.js';
import { sameShape, type Shape } from '../shape.js';

/** An elementwise operand: a tensor or a scalar. */
export type Operand = Tensor | number;

function gradTo(g: Tensor, x: Tensor): Tensor {
  return sameShape(g.shape, x.shape) ? g : sumTo(g, x.shape);
}

/** Each binary op's expressions for (tensor, scalar), (scalar, tensor) and (tensor, tensor), by op name. */
const BINARY_EXPRS = new Map<string, [string, string, string]>();

/** A binary op where either side may be a plain number (folded into the kernel as a scalar). */
function binary(
  op: string,
  expr: (a: string, b: string) => string,
  a: Operand,
  b: Operand,
  back: (g: Tensor, a: Operand, b: Operand) => [Tensor | null, Tensor | null],
): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: at least one operand must be a tensor`);
  // The op's three expressions, built once: a string built per call would be hashed anew by every
  // cache lookup that follows.
  let exprs = BINARY_EXPRS.get(op);
  if (!exprs) BINARY_EXPRS.set(op, (exprs = [expr('a', 's.x'), expr('s.x', 'a'), expr('a', 'b')]));
  let out: Tensor;
  if (typeof b === 'number') out = mapKernel(op, exprs[0], [a as Tensor], [b]);
  else if (typeof a === 'number') out = mapKernel(op, exprs[1], [b], [a]);
  else out = mapKernel(op, exprs[2], [a, b]);
  const tensors = typeof a === 'number' ? [b as Tensor] : typeof b === 'number' ? [a] : [a, b];
  return record(out, op, tensors, (g) => {
    const [ga, gb] = back(g, a, b);
    const res: (Tensor | null)[] = [];
    if (typeof a !== 'number') res.push(ga && gradTo(ga, a));
    if (typeof b !== 'number') res.push(gb && gradTo(gb, b));
    return res;
  });
}

function unary(op: string, expr: string, x: Tensor, scalars: number[], back: (g: Tensor, out: Tensor) => Tensor): Tensor {
  const out = mapKernel(op, expr, [x], scalars);
  return record(out, op, [x], (g) => [back(g, out)]);
}

/** Elementwise a + b, broadcasting. */
export function add(a: Operand, b: Operand): Tensor {
  return binary('add', (a, b) => `${a} + ${b}`, a, b, (g) => [g, g]);
}
/** Elementwise a − b, broadcasting. */
export function sub(a: Operand, b: Operand): Tensor {
  return binary('sub', (a, b) => `${a} - ${b}`, a, b, (g) => [g, neg(g)]);
}
/** Elementwise a · b, broadcasting. */
export function mul(a: Operand, b: Operand): Tensor {
  return binary('mul', (a, b) => `${a} * ${b}`, a, b, (g, a, b) => [mul(g, b), mul(g, a)]);
}
/** Elementwise a / b, broadcasting. */
export function div(a: Operand, b: Operand): Tensor {
  return binary('div', (a, b) => `${a} / ${b}`, a, b, (g, a, b) => [
    div(g, b),
    typeof b === 'number'
      ? null
      : typeof a === 'number'
        ? mapKernel('div_backward_b', '-s.x * a / (b * b)', [g, b], [a])
        : mapKernel('div_backward_b', '-a * b / (c * c)', [g, a, b]),
  ]);
}
/** a ** b for a tensor base and a scalar exponent. */
export function pow(a: Tensor, p: number): Tensor {
  return unary('pow', powExpr(p), a, [p], (g) =>
    mul(g, mapKernel('pow_backward', `s.x * ${powExpr(p - 1, 'a', 's.y')}`, [a], [p, p - 1])),
  );
}

/** WGSL pow is undefined for negative bases; integer exponents (x², x³) are common and must work. */
function powExpr(p: number, x = 'a', ps = 's.x'): string {
  // x⁰ = 1 everywhere; WGSL's pow(0, 0) is exp2(0·log2 0) = NaN, which pow(x, 1)'s backward would hit at 0.
  if (p === 0) return '1.0';
  if (!Number.isInteger(p)) return `pow(${x}, ${ps})`;
  const sign = Math.abs(p % 2) === 1 ? `select(1.0, -1.0, ${x} < 0.0)` : '1.0';
  return `${sign} * pow(abs(${x}), ${ps})`;
}

/** Elementwise −x. */
export function neg(x: Tensor): Tensor {
  return unary('neg', '-a', x, [], (g) => neg(g));
}
/** Elementwise eˣ. */
export function exp(x: Tensor): Tensor {
  return unary('exp', 'exp(a)', x, [], (g, out) => mul(g, out));
}
/** Elementwise natural logarithm. */
export function log(x: Tensor): Tensor {
  return unary('log', 'log(a)', x, [], (g) => div(g, x));
}
/** Elementwise √x. */
export function sqrt(x: Tensor): Tensor {
  return unary('sqrt', 'sqrt(a)', x, [], (g, out) => mapKernel('sqrt_backward', '0.5 * a / b', [g, out]));
}
/** Elementwise 1/√x. */
export function rsqrt(x: Tensor): Tensor {
  return unary('rsqrt', 'inverseSqrt(a)', x, [], (g, out) => mapKernel('rsqrt_backward', '-0.5 * a * b * b * b', [g, out]));
}
/** Elementwise |x|. */
export function abs(x: Tensor): Tensor {
  return unary('abs', 'abs(a)', x, [], (g) => mapKernel('abs_backward', 'a * sign(b)', [g, x]));
}
/** Elementwise max(x, 0). */
export function relu(x: Tensor): Tensor {
  return unary('relu', 'max(a, 0.0)', x, [], (g) => mapKernel('relu_backward', 'select(0.0, a, b > 0.0)', [g, x]));
}
/** Elementwise min(max(x, min), max). */
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  const lo = Math.max(min, -3.4e38);
  const hi = Math.min(max, 3.4e38);
  return unary('clamp', 'clamp(a, s.x, s.y)', x, [lo, hi], (g) =>
    mapKernel('clamp_backward', 'select(0.0, a, b >= s.x && b <= s.y)', [g, x], [lo, hi]),
  );
}

// GELU with the exact erf form (PyTorch's nn.GELU default). WGSL has no erf: Abramowitz-Stegun 7.1.26
// has absolute error < 1.5e-7, below f32 resolution at the values that matter.
const ERF = (z: string) =>
  `(sign(${z}) * (1.0 - (((((1.061405429 * (1.0 / (1.0 + 0.3275911 * abs(${z})))) - 1.453152027) * (1.0 / (1.0 + 0.3275911 * abs(${z}))) + 1.421413741) * (1.0 / (1.0 + 0.3275911 * abs(${z}))) - 0.284496736) * (1.0 / (1.0 + 0.3275911 * abs(${z}))) + 0.254829592) * (1.0 / (1.0 + 0.3275911 * abs(${z}))) * exp(-${z} * ${z})))`;
/** Elementwise GELU (the exact, erf form). */
export function gelu(x: Tensor): Tensor {
  return unary('gelu', `0.5 * a * (1.0 + ${ERF('(a * 0.70710678118)')})`, x, [], (g) =>
    mapKernel(
      'gelu_backward',
      `a * (0.5 * (1.0 + ${ERF('(b * 0.70710678118)')}) + b * 0.3989422804 * exp(-0.5 * b * b))`,
      [g, x],
    ),
  );
}

/** cond ? a : b, where cond is nonzero. No gradient flows to cond. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const out = mapKernel('where', 'select(c, b, a != 0.0)', [cond, a, b]);
  return record(out, 'where', [cond, a, b], (g) => [
    null,
    gradTo(mapKernel('where_backward_a', 'select(0.0, b, a != 0.0)', [cond, g]), a),
    gradTo(mapKernel('where_backward_b', 'select(b, 0.0, a != 0.0)', [cond, g]), b),
  ]);
}

// Comparisons give 0/1 masks and have no gradient.
/** Elementwise a == b as 1 or 0 (no gradient). */
export function eq(a: Tensor, b: Operand): Tensor {
  return typeof b === 'number' ? mapKernel('eq', 'select(0.0, 1.0, a == s.x)', [a], [b]) : mapKernel('eq', 'select(0.0, 1.0, a == b)', [a, b]);
}
/** Elementwise a > b as 1 or 0 (no gradient). */
export function gt(a: Tensor, b: Operand): Tensor {
  return typeof b === 'number' ? mapKernel('gt', 'select(0.0, 1.0, a > s.x)', [a], [b]) : mapKernel('gt', 'select(0.0, 1.0, a > b)', [a, b]);
}

/** A new tensor of `shape` filled with `value` (no upload). */
export function fill(engine: Engine, shape: Shape, value: number): Tensor {
  return mapKernel('fill', 's.x', [], [value], engine, shape);
}
