// The HVP pair scores written with tfjs ops, vectorised over all combinations as tfjs would be used
// (gathers and batched matmuls, no per-pair loop), for the scoring cases' peer. Each returns the
// [B, C] scores of bench/cases/scoring.ts's fused kernels.

import type { Tensor as TfTensor, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { Tf } from '../peers/tfjs.js';

/** cosine_similarity's ε on each norm, as simsiamLoss and scoreSimSiam use. */
const EPS = 1e-8;
/** The finite self-logit of ntXentLoss: removes the diagonal from each row's softmax. */
const SELF_LOGIT = -1e9;

function normalize(tf: Tf, x: TfTensor): TfTensor {
  return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', -1, true), EPS));
}

/** p, z [V, B, D]; i, j int32 [C]: -½[cos(p_i, z_j) + cos(p_j, z_i)] as [B, C]. */
export function tfjsSimSiam(tf: Tf, p: TfTensor, z: TfTensor, i: TfTensor, j: TfTensor): TfTensor {
  const pn = normalize(tf, p);
  const zn = normalize(tf, z);
  const cos = (a: TfTensor, b: TfTensor) => tf.sum(tf.mul(tf.gather(pn, a), tf.gather(zn, b)), -1);
  return tf.transpose(tf.mul(tf.add(cos(i, j), cos(j, i)), -0.5));
}

/** Pair index tensors [C, 2] of a table of pairs (i, j): (i, j), (i, i), (j, i), (j, j). */
export function simclrIndices(tf: Tf, rows: number[][]): TfTensor[] {
  const t = (f: (r: number[]) => number[]) => tf.tensor2d(rows.map(f), [rows.length, 2], 'int32');
  return [t(([a, b]) => [a, b]), t(([a]) => [a, a]), t(([a, b]) => [b, a]), t(([, b]) => [b, b])];
}

/** The [V·B, V·B] constant with SELF_LOGIT on the diagonal and the [1, B, 1, B] identity. */
export function simclrConstants(tf: Tf, v: number, b: number): { selfMask: TfTensor; eye: TfTensor } {
  const n = v * b;
  const m = new Float32Array(n * n);
  for (let r = 0; r < n; r++) m[r * n + r] = SELF_LOGIT;
  return { selfMask: tf.tensor2d(m, [n, n]), eye: tf.reshape(tf.eye(b), [1, b, 1, b]) };
}

/**
 * z [V, B, D]: NT-Xent's ℓ_(i,b) + ℓ_(j,b) per pair as [B, C]. One Gram matrix of the normalised
 * rows; per row and view the log-sum-exp over that view's columns (self excluded) and the positive
 * logit; each pair's row loss is -positive + logaddexp(lse over view i, lse over view j).
 */
export function tfjsSimClr(tf: Tf, z: TfTensor, idx: TfTensor[], c: { selfMask: TfTensor; eye: TfTensor }, temperature: number): TfTensor {
  const [v, b, d] = z.shape;
  const zn = normalize(tf, tf.reshape(z, [v * b, d])) as Tensor2D;
  const logits = tf.add(tf.mul(tf.matMul(zn, zn, false, true), 1 / temperature), c.selfMask);
  const g4 = tf.reshape(logits, [v, b, v, b]);
  // [V, V, B]: entry (v, w, b) is row (v, b) against view w.
  const lse = tf.transpose(tf.logSumExp(g4, 3), [0, 2, 1]);
  const pos = tf.transpose(tf.sum(tf.mul(g4, c.eye), 3), [0, 2, 1]);
  const [ij, ii, ji, jj] = idx;
  const rowLoss = (own: TfTensor, other: TfTensor, posIdx: TfTensor) =>
    tf.sub(tf.logSumExp(tf.stack([tf.gatherND(lse, own), tf.gatherND(lse, other)]), 0), tf.gatherND(pos, posIdx));
  return tf.transpose(tf.add(rowLoss(ii, ij, ij), rowLoss(jj, ji, ji)));
}

/**
 * [G·Vs, C] weights of DINO's combination sums: 1 at (t, v) for each teacher global t ∈ {gA, gB} and
 * student view v ≠ t of combination c.
 */
export function dinoWeights(tf: Tf, rows: number[][], g: number, vs: number): TfTensor {
  const w = new Float32Array(g * vs * rows.length);
  rows.forEach((r, c) => {
    for (const t of r.slice(0, 2)) for (const v of r) if (v !== t) w[(t * vs + v) * rows.length + c] = 1;
  });
  return tf.tensor2d(w, [g * vs, rows.length]);
}

/** student [Vs, B, K], teacher [G, B, K], center [K]: Σ_t Σ_(v≠t) CE(q_t, log p_v) per combination, [B, C]. */
export function tfjsDino(tf: Tf, student: TfTensor, teacher: TfTensor, center: TfTensor, weights: TfTensor, temps: { teacher: number; student: number }): TfTensor {
  const [vs, b] = student.shape;
  const g = teacher.shape[0];
  const q = tf.softmax(tf.div(tf.sub(teacher, center), temps.teacher));
  const logp = tf.logSoftmax(tf.div(student, temps.student));
  // [B, G, K] @ [B, K, Vs]: the CE table of every (teacher global, student view) pair per sample.
  const ce = tf.neg(tf.matMul(tf.transpose(q, [1, 0, 2]) as Tensor3D, tf.transpose(logp, [1, 2, 0]) as Tensor3D));
  return tf.matMul(tf.reshape(ce, [b, g * vs]) as Tensor2D, weights as Tensor2D);
}
