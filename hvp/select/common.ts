// Shared checks, WGSL snippets and the contiguous-copy helper of hvp/select's kernels.

import { fmt, ops, Tensor, type Engine, type Snippets } from '../../engine/index.js';
import { combinationTable } from './combinations.js';
import table from './table.wgsl';
import pair from './pair.wgsl';

/** The snippets select's kernels include besides the engine's (`#include "select/table"`, `"select/pair"`). */
export const SELECT_SNIPPETS: Snippets = { 'select/table': table, 'select/pair': pair };

/** A combination table: an i32 tensor [C, n], or its rows (uploaded by asTable). */
export type TableLike = Tensor | readonly (readonly number[])[];

/**
 * The table as an i32 [C, n] tensor with n ≥ `minCols`: the tensor itself, or rows uploaded (the
 * caller disposes those: compare with the argument, or run inside a scope).
 */
export function asTable(op: string, engine: Engine, table: TableLike, minCols: number): Tensor {
  const t = table instanceof Tensor ? table : combinationTable(engine, table);
  if (t.dtype !== 'i32' || t.ndim !== 2 || t.shape[0] < 1 || t.shape[1] < minCols) {
    if (t !== table) t.dispose();
    throw new Error(`${op}: the combination table must be i32 [C, n] with C ≥ 1 and n ≥ ${minCols}, got ${t}`);
  }
  return t;
}

/** Embeddings stacked view-major as [V, B, D] (reshape a [V·B, D] tensor first). */
export function checkViews(op: string, name: string, x: Tensor): [number, number, number] {
  if (x.dtype !== 'f32' || x.ndim !== 3 || x.size === 0) {
    throw new Error(`${op}: ${name} must be f32 [V, B, D] (views stacked view-major; reshape [V·B, D] to [V, B, D]), got ${x}`);
  }
  return [x.shape[0], x.shape[1], x.shape[2]];
}

export function sameDims(op: string, a: Tensor, b: Tensor, names: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: ${names} must have equal shapes, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
}

/**
 * Run fn on contiguous copies of the tensors that need one (kernels bind buffers whole and index
 * row-major from the offset), then dispose those copies.
 */
export function withContiguous<T>(ts: Tensor[], fn: (cs: Tensor[]) => T): T {
  const cs = ts.map((t) => (t.isContiguous() ? t : ops.contiguous(t)));
  try {
    return fn(cs);
  } finally {
    cs.forEach((c, i) => c !== ts[i] && c.dispose());
  }
}
