// HVP's SimSiam scores (docs/method.md §2): s_b(i, j) = -½[cos(p_i, z_j) + cos(p_j, z_i)] for every sample and
// every combination of a table, in one dispatch (score-simsiam.wgsl). Equal to
// simsiamLoss(p_i, p_j, z_i, z_j, {perSample}) for each pair.

import { defineKernel, fmt, type Tensor } from '../../engine/index.js';
import source from './score-simsiam.wgsl';
import { asTable, SELECT_SNIPPETS, type TableLike, checkViews, sameDims, withContiguous } from './common.js';

/** Views per sample the kernel's workgroup memory holds norms for (2 · 64 floats). */
const MAX_VIEWS = 64;
/** cosine_similarity's ε on each norm, as simsiamLoss uses. */
const EPS = 1e-8;

/** One workgroup per sample (see the shader). */
const kernel = defineKernel({
  name: 'select_simsiam',
  source,
  workgroupSize: 64,
  uniforms: {
    views: 'u32',
    batch: 'u32',
    dim: 'u32',
    combos: 'u32',
    cols: 'u32', // n, the table's row length
    eps: 'f32',
  },
  inputs: { p: 'f32', z: 'f32', table: 'i32' },
  outputs: { out: 'f32' },
  defines: { MAX_VIEWS },
  snippets: SELECT_SNIPPETS,
});

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
    kernel.launch({
      inputs: [pc, zc, tc],
      outputs: [out],
      uniforms: { views: v, batch: b, dim: d, combos: c, cols: n, eps: EPS },
      grid: { workgroups: b },
    }),
  );
  if (tab !== table) tab.dispose();
  return out;
}
