// Float64 references of the SSL losses (test/losses.test.ts): naive loops over rows, written from the
// papers' formulas, used by the finite-difference gradient checks. Inputs are row-major Nd arrays.

import { Nd } from './ref.js';

type Row = Float64Array;

function rows(x: Nd, width: number): Row[] {
  return Array.from({ length: x.size / width }, (_, r) => x.data.subarray(r * width, (r + 1) * width));
}

const dot = (a: Row, b: Row) => a.reduce((s, v, i) => s + v * b[i], 0);
const norm = (a: Row) => Math.sqrt(dot(a, a));

/** a·b / (max(‖a‖, ε)·max(‖b‖, ε)), F.cosine_similarity's ε on each norm. */
function cosine(a: Row, b: Row, eps = 1e-8): number {
  return dot(a, b) / (Math.max(norm(a), eps) * Math.max(norm(b), eps));
}

function logSoftmax(x: Row, scale: number): number[] {
  const z = [...x].map((v) => v / scale);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
}

function softmax(x: Row, center: Row, temp: number): number[] {
  const z = [...x].map((v, k) => (v - center[k]) / temp);
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const ce = (q: number[], logp: number[]) => -q.reduce((s, v, k) => s + v * logp[k], 0);

/** -½[cos(p1_b, z2_b) + cos(p2_b, z1_b)] per sample: [B]. */
export function simsiamRef(p1: Nd, p2: Nd, z1: Nd, z2: Nd): Nd {
  const d = p1.shape[1];
  const [a1, a2, b1, b2] = [p1, p2, z1, z2].map((x) => rows(x, d));
  return Nd.from(a1.map((_, b) => -0.5 * (cosine(a1[b], b2[b]) + cosine(a2[b], b1[b]))), [a1.length]);
}

/** ℓ_(i,b) + ℓ_(j,b) per sample: row r of [z_i; z_j] against every other row, positive = the other view. */
export function ntXentRef(zi: Nd, zj: Nd, temperature: number): Nd {
  const [b, d] = zi.shape;
  const z = [...rows(zi, d), ...rows(zj, d)];
  const loss = z.map((zr, r) => {
    const logits = z.map((zc, c) => (c === r ? -Infinity : cosine(zr, zc, 1e-12) / temperature));
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0));
    return lse - logits[(r + b) % (2 * b)];
  });
  return Nd.from(loss.slice(0, b).map((v, k) => v + loss[b + k]), [b]);
}

export interface DinoRefArgs {
  teacher: Nd;
  center: Row;
  temp: number;
  studentTemp: number;
  views: number;
  globals: number;
}

/** Σ_t Σ_(v≠t) CE(softmax((t_t - c)/τ_t), log softmax(s_v/τ_s)) per sample: [B]. */
export function dinoRef(student: Nd, a: DinoRefArgs): Nd {
  const k = student.shape[1];
  const b = student.shape[0] / a.views;
  const s = rows(student, k).map((r) => logSoftmax(r, a.studentTemp));
  const q = rows(a.teacher, k).map((r) => softmax(r, a.center, a.temp));
  const out = Nd.zeros([b]);
  for (let i = 0; i < b; i++) {
    for (let t = 0; t < a.globals; t++) {
      for (let v = 0; v < a.views; v++) if (v !== t) out.data[i] += ce(q[t * b + i], s[v * b + i]);
    }
  }
  return out;
}

export interface IbotRefArgs {
  cls: DinoRefArgs;
  teacherPatch: Nd;
  center2: Row;
  temp2: number;
  masks: number[];
  lambda1: number;
  lambda2: number;
}

/** iBOT's per-sample loss: λ1·[CLS] sum / terms + λ2·Σ_t (mean CE over image t,b's masked patches) / G. */
export function ibotRef(studentCls: Nd, studentPatch: Nd, a: IbotRefArgs): Nd {
  const { globals: g, views } = a.cls;
  const cls = dinoRef(studentCls, a.cls);
  const [rowsGB, p, k2] = studentPatch.shape;
  const b = rowsGB / g;
  const s = rows(studentPatch, k2).map((r) => logSoftmax(r, a.cls.studentTemp));
  const q = rows(a.teacherPatch, k2).map((r) => softmax(r, a.center2, a.temp2));
  const out = Nd.zeros([b]);
  for (let i = 0; i < b; i++) {
    let patch = 0;
    for (let t = 0; t < g; t++) {
      const img = t * b + i;
      let sum = 0;
      let count = 0;
      for (let j = 0; j < p; j++) {
        if (!a.masks[img * p + j]) continue;
        sum += ce(q[img * p + j], s[img * p + j]);
        count++;
      }
      patch += sum / Math.max(count, 1);
    }
    out.data[i] = (a.lambda1 * cls.data[i]) / (g * views - g) + (a.lambda2 * patch) / g;
  }
  return out;
}
