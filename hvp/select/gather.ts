// HVP's training batch (SPEC §1.5): the selected views of every sample, gathered on the GPU in one
// dispatch (shaders/select-gather.wgsl) straight from the selection's choice, with no readback.

import { fmt, numel, Tensor } from '../../engine/index.js';
import source from '../../shaders/select-gather.wgsl';
import { asTable, type TableLike, launch, withContiguous } from './common.js';

export interface GatherOptions {
  /** Table columns [from, to) to gather (default all). */
  columns?: [number, number];
  /**
   * The view index of `views`' first block: subtracted from the table's entries. DINO keeps globals
   * and locals in separate tensors (different crop sizes): the globals are gathered with columns
   * [0, 2) and offset 0, the locals with columns [2, n) and offset G.
   */
  viewOffset?: number;
}

/**
 * views [V·B, ...rest] (view-major), choice i32 [B], table i32 [C, n] → [m·B, ...rest] with
 * m = to - from and output row s·B + b = views row (table[choice[b], from + s] - viewOffset)·B + b.
 * Off the tape: it assembles inputs (images) for the training forward. Indices are clamped on the GPU.
 */
export function gatherSelected(views: Tensor, choice: Tensor, table: TableLike, opts: GatherOptions = {}): Tensor {
  const op = 'gatherSelected';
  if (choice.dtype !== 'i32' || choice.ndim !== 1 || choice.shape[0] < 1) throw new Error(`${op}: choice must be i32 [B], got ${choice}`);
  const b = choice.shape[0];
  if (views.ndim < 1 || views.shape[0] % b !== 0 || views.shape[0] === 0) {
    throw new Error(`${op}: views ${fmt(views.shape)} must be [V·B, ...] for B = ${b} (the length of choice)`);
  }
  const n = table instanceof Tensor ? table.shape[table.ndim - 1] : table[0]?.length ?? 0;
  const [from, to] = opts.columns ?? [0, n];
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > n || from >= to) {
    throw new Error(`${op}: columns [${from}, ${to}) must lie within the table's ${n} columns and be non-empty`);
  }
  const viewOffset = opts.viewOffset ?? 0;
  if (!Number.isInteger(viewOffset)) throw new Error(`${op}: viewOffset must be an integer, got ${viewOffset}`);
  const v = views.shape[0] / b;
  const rest = views.shape.slice(1);
  const rowLen = numel(rest);
  const tab = asTable(op, views.engine, table, 1);
  const c = tab.shape[0];
  const out = views.engine.empty([(to - from) * b, ...rest], views.dtype);
  withContiguous([views, choice, tab], ([x, ch, t]) =>
    launch(op, { name: 'select_gather', source }, [x, ch, t], [out], out.size, (w) => {
      const u = new Uint32Array(12);
      u.set([out.size, rowLen, b, c, n, from, v, 0, x.offset, ch.offset, t.offset, w]);
      new Int32Array(u.buffer)[7] = viewOffset;
      return u;
    }),
  );
  if (tab !== table) tab.dispose();
  return out;
}
