// Feature matrices of whole splits, held on the GPU as row blocks: one buffer may not exceed the
// device's binding limit (128 MiB on lavapipe), and 60k raw Fashion-MNIST images alone are 188 MB.
// A FeatureRows is one [N, F] matrix: a single tensor, or blocks [n_i, F] stacked along the rows.

import { ops, type Engine, type Tensor } from '../../engine/index.js';

/** Feature rows: one tensor, or row blocks of one. */
export type FeatureRows = Tensor | readonly Tensor[];

/** Bytes of one row block; half the binding limit leaves room for the bucketed pool's rounding. */
export const BLOCK_BYTES = 64 * 2 ** 20;

/** The row blocks of feature rows (one block for a single tensor). */
export function rowBlocks(f: FeatureRows): readonly Tensor[] {
  return Array.isArray(f) ? (f as readonly Tensor[]) : [f as Tensor];
}

/** Rows and width of a feature matrix, checking that every block is [n_i, F] with one F. */
export function featureShape(op: string, f: FeatureRows): { rows: number; dim: number } {
  const blocks = rowBlocks(f);
  if (blocks.length === 0) throw new Error(`${op}: no feature blocks`);
  const dim = blocks[0].shape[1];
  let rows = 0;
  for (const b of blocks) {
    if (b.ndim !== 2 || b.shape[1] !== dim || b.dtype !== 'f32') {
      throw new Error(`${op}: feature blocks must be f32 [n, ${dim}], got ${b}`);
    }
    rows += b.shape[0];
  }
  return { rows, dim };
}

/** Rows per block for features of width `dim`. */
export function blockRows(dim: number, bytes = BLOCK_BYTES): number {
  return Math.max(1, Math.floor(bytes / (4 * Math.max(dim, 1))));
}

/** Column means [F] (and standard deviations when asked, biased) over all rows of all blocks. */
export function columnStats(f: FeatureRows, withStd = false): { mean: Tensor; std?: Tensor } {
  const blocks = rowBlocks(f);
  const { rows } = featureShape('columnStats', f);
  const engine = blocks[0].engine;
  return engine.scope(() => {
    const total = (g: (b: Tensor) => Tensor) => blocks.map((b) => ops.sum(g(b), 0)).reduce((a, b) => ops.add(a, b));
    const mean = ops.div(total((b) => b), rows);
    if (!withStd) return { mean };
    const sq = total((b) => {
      const d = ops.sub(b, mean);
      return ops.mul(d, d);
    });
    return { mean, std: ops.sqrt(ops.div(sq, rows)) };
  });
}

/** Apply fn to every block (inside a scope), keeping only the results. */
export function mapBlocks(engine: Engine, f: FeatureRows, fn: (b: Tensor) => Tensor): Tensor[] {
  return rowBlocks(f).map((b) => engine.scope(() => fn(b)));
}

/** Rows [start, end) of a feature matrix as row views, one per block they touch. */
export function rowRange(f: FeatureRows, start: number, end: number): Tensor[] {
  const out: Tensor[] = [];
  let base = 0;
  for (const b of rowBlocks(f)) {
    const n = b.shape[0];
    const lo = Math.max(start, base);
    const hi = Math.min(end, base + n);
    if (lo < hi) out.push(ops.slice(b, 0, lo - base, hi - base));
    base += n;
  }
  return out;
}

export function disposeRows(f: FeatureRows): void {
  for (const b of rowBlocks(f)) b.dispose();
}
