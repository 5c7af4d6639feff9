// HVP's DINO and iBOT scores (docs/method.md §2, fused form): one kernel computing the table of CE(q_t, log p_v)
// for every sample, teacher global t and student view v (score-dino-ce.wgsl), then one kernel
// (score-dino.wgsl) summing each combination's entries. iBOT adds its per-image masked patch
// term for the selected global pair; its local views are in every combination.

import { defineKernel, fmt, type Tensor } from '../../engine/index.js';
import { clamp, div, logSoftmax, mul, neg, reshape, sum } from '../../engine/ops/index.js';
import { teacherProbs } from '../losses/dino.js';
import ceSource from './score-dino-ce.wgsl';
import source from './score-dino.wgsl';
import { asTable, SELECT_SNIPPETS, type TableLike, checkViews, sameDims, withContiguous } from './common.js';

const ceKernel = defineKernel({
  name: 'select_dino_ce',
  source: ceSource,
  workgroupSize: 256,
  uniforms: { batch: 'u32', globals: 'u32', student_views: 'u32', dim: 'u32' },
  inputs: { q: 'f32', logp: 'f32' },
  outputs: { ce_out: 'f32' },
});

const combineUniforms = {
  batch: 'u32',
  globals: 'u32',
  student_views: 'u32',
  combos: 'u32',
  cols: 'u32',
  always_from: 'u32',
  always_to: 'u32',
  w_cls: 'f32',
} as const;

const dinoKernel = defineKernel({
  name: 'select_dino',
  source,
  workgroupSize: 256,
  uniforms: combineUniforms,
  inputs: { ce: 'f32', table: 'i32' },
  outputs: { out: 'f32' },
  defines: { PATCH: false },
  snippets: SELECT_SNIPPETS,
});

/** iBOT: DINO's sum plus the masked patch term of the combination's two globals. */
const ibotKernel = defineKernel({
  name: 'select_ibot',
  source,
  workgroupSize: 256,
  uniforms: { ...combineUniforms, w_patch: 'f32' },
  inputs: { ce: 'f32', table: 'i32', patch_ce: 'f32' },
  outputs: { out: 'f32' },
  defines: { PATCH: true },
  snippets: SELECT_SNIPPETS,
});

/** Temperatures of DINO's selection score. */
export interface DinoScoreOptions {
  /** τ_t of the current epoch (DINO: 0.04, possibly warmed up). */
  teacherTemp?: number;
  /** τ_s (0.1). */
  studentTemp?: number;
}

function checkTemps(op: string, temps: Record<string, number>): void {
  for (const [name, t] of Object.entries(temps)) if (!(t > 0)) throw new Error(`${op}: ${name} must be positive, got ${t}`);
}

/** [B, G, Vs] cross-entropies of student [Vs, B, K] against teacher [G, B, K] (centred, sharpened). */
function ceTable(op: string, student: Tensor, teacher: Tensor, center: Tensor, teacherTemp: number, studentTemp: number): Tensor {
  const [vs, b, k] = checkViews(op, 'student logits', student);
  const [g, bt, kt] = checkViews(op, 'teacher logits', teacher);
  if (b !== bt || k !== kt || g > vs || center.size !== k) {
    throw new Error(
      `${op}: expects student logits [Vs, B, K], teacher logits [G, B, K] with G ≤ Vs and center [K], got ` +
        `${fmt(student.shape)}, ${fmt(teacher.shape)} and ${fmt(center.shape)}`,
    );
  }
  const q = teacherProbs(reshape(teacher, [g * b, k]), reshape(center, [k]), teacherTemp);
  const logp = logSoftmax(div(reshape(student, [vs * b, k]), studentTemp), -1);
  const ce = student.engine.empty([b, g, vs]);
  ceKernel.launch({
    inputs: [q, logp],
    outputs: [ce],
    uniforms: { batch: b, globals: g, student_views: vs, dim: k },
    grid: { invocations: b * g * vs },
  });
  return ce;
}

interface Combine {
  ce: Tensor;
  table: Tensor;
  alwaysFrom: number;
  alwaysTo: number;
  wCls: number;
  patch?: Tensor;
  wPatch?: number;
}

function combine(a: Combine): Tensor {
  const [b, g, vs] = a.ce.shape;
  const [c, n] = [a.table.shape[0], a.table.shape[1]];
  const out = a.ce.engine.empty([b, c]);
  withContiguous(a.patch ? [a.ce, a.table, a.patch] : [a.ce, a.table], ([ce, t, patch]) => {
    const uniforms = {
      batch: b,
      globals: g,
      student_views: vs,
      combos: c,
      cols: n,
      always_from: a.alwaysFrom,
      always_to: a.alwaysTo,
      w_cls: a.wCls,
    };
    const launch = { outputs: [out], grid: { invocations: b * c } };
    if (patch) ibotKernel.launch({ ...launch, inputs: [ce, t, patch], uniforms: { ...uniforms, w_patch: a.wPatch ?? 0 } });
    else dinoKernel.launch({ ...launch, inputs: [ce, t], uniforms });
  });
  return out;
}

/**
 * DINO: student [G+L, B, K] and teacher [G, B, K] logits, center [K], table i32 [C, 2+n] of
 * [gA, gB, locals..] (dinoCombinations). s_b(c) = Σ_{t ∈ {gA, gB}} Σ_{v in c, v ≠ t} CE(q_t, log p_v),
 * DinoLoss's per-sample form on the selected views. Returns [B, C].
 */
export function scoreDino(student: Tensor, teacher: Tensor, center: Tensor, opts: DinoScoreOptions, table: TableLike): Tensor {
  const op = 'scoreDino';
  const { teacherTemp = 0.04, studentTemp = 0.1 } = opts;
  checkTemps(op, { teacherTemp, studentTemp });
  const engine = student.engine;
  return engine.scope(() =>
    engine.noGrad(() => {
      const tab = asTable(op, engine, table, 2);
      const ce = ceTable(op, student, teacher, center, teacherTemp, studentTemp);
      return combine({ ce, table: tab, alwaysFrom: 0, alwaysTo: 0, wCls: 1 });
    }),
  );
}

/** iBOT's head outputs for scoring: all views' [CLS] and the global views' patches, view-major. */
export interface IbotScoreInputs {
  /** Shape [G+L, B, K]: the G (masked) global views, then the L locals. */
  studentCls: Tensor;
  /** [G, B, K]. */
  teacherCls: Tensor;
  /** [G, B, P, K2], from the masked global views. */
  studentPatch: Tensor;
  /** [G, B, P, K2], from the unmasked global views. */
  teacherPatch: Tensor;
  /** f32 [G, B, P], 1 = masked (drawn once per view). */
  masks: Tensor;
}

/** Temperatures and weights of iBOT's selection score. */
export interface IbotScoreOptions extends DinoScoreOptions {
  center: Tensor;
  /** [K2], iBOT's center2. */
  center2: Tensor;
  teacherPatchTemp?: number;
  lambda1?: number;
  lambda2?: number;
}

/** Per image and global view, Σ_p mask·CE(q_p, log p_p) / max(Σ_p mask, 1): [G, B], IbotLoss's patch term. */
function maskedPatchCe(op: string, x: IbotScoreInputs, center2: Tensor, teacherTemp: number, studentTemp: number): Tensor {
  const s = x.studentPatch.shape;
  if (s.length !== 4 || x.teacherPatch.ndim !== 4) throw new Error(`${op}: patch outputs must be [G, B, P, K2], got ${x.studentPatch} and ${x.teacherPatch}`);
  sameDims(op, x.studentPatch, x.teacherPatch, 'student and teacher patch outputs');
  if (x.masks.dtype !== 'f32' || x.masks.ndim !== 3 || x.masks.shape.some((d, i) => d !== s[i]) || center2.size !== s[3]) {
    throw new Error(`${op}: masks must be f32 [G, B, P] = ${fmt(s.slice(0, 3))} and center2 [${s[3]}], got ${x.masks} and ${fmt(center2.shape)}`);
  }
  const probs = teacherProbs(x.teacherPatch, reshape(center2, [s[3]]), teacherTemp);
  const ce = neg(sum(mul(probs, logSoftmax(div(x.studentPatch, studentTemp), -1)), -1));
  return div(sum(mul(ce, x.masks), -1), clamp(sum(x.masks, -1), 1));
}

/**
 * iBOT: for each global pair (gA, gB) of the table (ibotCombinations) and sample, IbotLoss's
 * per-sample loss on views {gA, gB} + all locals: λ1/(2·(2+L) - 2) · Σ_{t} Σ_{v ≠ t} CE([CLS]) +
 * λ2/2 · (patch CE of gA + patch CE of gB). Returns [B, C].
 */
export function scoreIbot(x: IbotScoreInputs, opts: IbotScoreOptions, table: TableLike): Tensor {
  const op = 'scoreIbot';
  const { teacherTemp = 0.04, studentTemp = 0.1, teacherPatchTemp = 0.07, lambda1 = 1, lambda2 = 1 } = opts;
  checkTemps(op, { teacherTemp, studentTemp, teacherPatchTemp });
  const engine = x.studentCls.engine;
  return engine.scope(() =>
    engine.noGrad(() => {
      const tab = asTable(op, engine, table, 2);
      const ce = ceTable(op, x.studentCls, x.teacherCls, opts.center, teacherTemp, studentTemp);
      const [, g, vs] = ce.shape;
      if (x.studentPatch.shape[0] !== g || x.studentPatch.shape[1] !== ce.shape[0]) {
        throw new Error(`${op}: patch outputs ${fmt(x.studentPatch.shape)} must hold the ${g} global views of ${ce.shape[0]} samples`);
      }
      const patch = maskedPatchCe(op, x, opts.center2, teacherPatchTemp, studentTemp);
      const locals = vs - g;
      const pairTable = tab.shape[1] === 2 ? tab : tab.slice(1, 0, 2);
      return combine({ ce, table: pairTable, alwaysFrom: g, alwaysTo: vs, wCls: lambda1 / (2 + 2 * locals), patch, wPatch: lambda2 / 2 });
    }),
  );
}
