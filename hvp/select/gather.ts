// HVP's training batch (docs/method.md §1 step 5): the selected views of every sample, gathered on the GPU in one
// dispatch (gather.wgsl) straight from the selection's choice, with no readback.

import { defineKernel, fmt, numel, Tensor } from '../../engine/index.js';
import source from './gather.wgsl';
import { asTable, type TableLike, withContiguous } from './common.js';

/** One thread per output element; `src` and `out` are u32 so f32 and i32 data move as bits. */
const kernel = defineKernel({
  name: 'select_gather',
  source,
  workgroupSize: 256,
  uniforms: {
    n: 'u32', // output elements
    row_len: 'u32',
    batch: 'u32',
    combos: 'u32',
    cols: 'u32', // table row length n
    first: 'u32', // first table column gathered
    views: 'u32', // V, rows of `views` / B
    view_off: 'i32', // subtracted from the table's view index (DINO's locals tensor starts at view G)
  },
  inputs: { src: 'u32', choice: 'i32', table: 'i32' },
  outputs: { out: 'u32' },
});

/** Which table columns gatherSelected reads, and the view index of the tensor's first block. */
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
    kernel.launch({
      inputs: [x, ch, t],
      outputs: [out],
      uniforms: {
        n: out.size,
        row_len: rowLen,
        batch: b,
        combos: c,
        cols: n,
        first: from,
        views: v,
        view_off: viewOffset,
      },
      grid: { invocations: out.size },
    }),
  );
  if (tab !== table) tab.dispose();
  return out;
}
