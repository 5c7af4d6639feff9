// HVP's SimSiam scores (SPEC §2): s_b(i, j) = -½[cos(p_i, z_j) + cos(p_j, z_i)] for every sample and
// every combination of a table, in one dispatch (shaders/select-simsiam.wgsl). Equal to
// simsiamLoss(p_i, p_j, z_i, z_j, {perSample}) for each pair.

import type { Tensor } from '../../engine/index.js';
import { fmt } from '../../engine/index.js';
import source from '../../shaders/select-simsiam.wgsl';
import { asTable, type TableLike, checkViews, launch, sameDims, withContiguous } from './common.js';

/** Views per sample the kernel's workgroup memory holds norms for (2 · 64 floats). */
const MAX_VIEWS = 64;
/** cosine_similarity's ε on each norm, as simsiamLoss uses. */
const EPS = 1e-8;

/** p (predictor outputs) and z (projector outputs), both [V, B, D]; table i32 [C, ≥2] of (i, j). Returns [B, C]. */
export function scoreSimSiam(p: Tensor, z: Tensor, table: TableLike): Tensor {
  const op = 'scoreSimSiam';
  const [v, b, d] = checkViews(op, 'p', p);
  checkViews(op, 'z', z);
  sameDims(op, p, z, 'p and z');
  if (v > MAX_VIEWS) throw new Error(`${op}: ${v} views exceed the kernel's ${MAX_VIEWS} (p ${fmt(p.shape)})`);
  const tab = asTable(op, p.engine, table, 2);
  const [c, n] = tab.shape;
  const out = p.engine.empty([b, c]);
  withContiguous([p, z, tab], ([pc, zc, tc]) =>
    launch(op, { name: 'select_simsiam', source, defines: { MAX_VIEWS } }, [pc, zc, tc], [out], b, (rowWidth) => {
      const u = new Uint32Array(12);
      u.set([v, b, d, c, n, pc.offset, zc.offset, tc.offset, rowWidth]);
      new Float32Array(u.buffer)[9] = EPS;
      return u;
    }, { perGroup: true }),
  );
  if (tab !== table) tab.dispose();
  return out;
}
