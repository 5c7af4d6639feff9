// HVP's SimCLR scores (docs/method.md §2, fused form): s_b(i, j) = ℓ_(i,b) + ℓ_(j,b), NT-Xent's per-sample loss
// on views i and j with negatives from the whole batch of those two views. Instead of one 2B×2B
// softmax per pair, one Gram matrix of all V·B normalised embeddings (our matmul), one kernel of
// per-(row, view) log-sum-exps and one combining kernel (score-simclr.wgsl).

import { defineKernel, type Tensor } from '../../engine/index.js';
import { l2Normalize, matmul, reshape, transpose } from '../../engine/ops/index.js';
import source from './score-simclr.wgsl';
import { asTable, SELECT_SNIPPETS, type TableLike, checkViews, withContiguous } from './common.js';

const uniforms = {
  views: 'u32',
  batch: 'u32',
  combos: 'u32',
  cols: 'u32',
  inv_temp: 'f32',
} as const;

/** One thread per (row, view): the log-sum-exp of the row's similarities to that view's block. */
const lseKernel = defineKernel({
  name: 'select_simclr_lse',
  source,
  workgroupSize: 256,
  uniforms,
  inputs: { gram: 'f32' },
  outputs: { lse: 'f32' },
  defines: { LSE: true },
  snippets: SELECT_SNIPPETS,
});

/** One thread per (sample, combination). */
const combineKernel = defineKernel({
  name: 'select_simclr',
  source,
  workgroupSize: 256,
  uniforms,
  inputs: { gram: 'f32', lse: 'f32', table: 'i32' },
  outputs: { out: 'f32' },
  defines: { LSE: false },
  snippets: SELECT_SNIPPETS,
});

/** z [V, B, D] projector outputs (normalised here); table i32 [C, ≥2] of (i, j). Returns [B, C]. */
export function scoreSimClr(z: Tensor, table: TableLike, temperature = 0.1): Tensor {
  const op = 'scoreSimClr';
  const [v, b, d] = checkViews(op, 'z', z);
  if (!(temperature > 0)) throw new Error(`${op}: temperature must be positive, got ${temperature}`);
  const engine = z.engine;
  // The scope frees the normalised rows, the Gram matrix and the log-sum-exps; only `out` leaves it.
  return engine.scope(() => engine.noGrad(() => {
    const tab = asTable(op, engine, table, 2);
    const [c, n] = tab.shape;
    const zn = l2Normalize(reshape(z, [v * b, d]), 1);
    const gram = matmul(zn, transpose(zn, 0, 1));
    const lse = engine.empty([v * b, v]);
    const out = engine.empty([b, c]);
    const uniforms = { views: v, batch: b, combos: c, cols: n, inv_temp: 1 / temperature };
    lseKernel.launch({ inputs: [gram], outputs: [lse], uniforms, grid: { invocations: v * b * v } });
    withContiguous([tab], ([tc]) =>
      combineKernel.launch({
        inputs: [gram, lse, tc],
        outputs: [out],
        uniforms,
        grid: { invocations: b * c },
      }),
    );
    return out;
  }));
}
