// HVP's SimCLR scores (SPEC §2, fused form): s_b(i, j) = ℓ_(i,b) + ℓ_(j,b), NT-Xent's per-sample loss
// on views i and j with negatives from the whole batch of those two views. Instead of one 2B×2B
// softmax per pair, one Gram matrix of all V·B normalised embeddings (our matmul), one kernel of
// per-(row, view) log-sum-exps and one combining kernel (shaders/select-simclr.wgsl).

import type { Tensor } from '../../engine/index.js';
import { l2Normalize, matmul, reshape, transpose } from '../../engine/ops/index.js';
import source from '../../shaders/select-simclr.wgsl';
import { asTable, type TableLike, checkViews, launch, withContiguous } from './common.js';

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
    const uniforms = (tOff: number, rowWidth: number) => {
      const u = new Uint32Array(8);
      u.set([v, b, c, n, gram.offset, tOff, rowWidth]);
      new Float32Array(u.buffer)[7] = 1 / temperature;
      return u;
    };
    launch(op, { name: 'select_simclr_lse', source, defines: { LSE: true } }, [gram], [lse], v * b * v, (w) => uniforms(0, w));
    withContiguous([tab], ([tc]) =>
      launch(op, { name: 'select_simclr', source, defines: { LSE: false } }, [gram, lse, tc], [out], b * c, (w) => uniforms(tc.offset, w)),
    );
    return out;
  }));
}
