// Float64 references of HVP's combination scores (docs/method.md §2), written straight from the formulas with
// naive loops: one value per (sample, combination). Inputs are row-major Nd arrays stacked view-major.

import { Nd } from './ref.js';

type Row = Float64Array;

/** Row (v, b) of a [V, B, ...rest] array. */
export function viewRow(x: Nd, v: number, b: number): Row {
  const width = x.size / (x.shape[0] * x.shape[1]);
  const r = v * x.shape[1] + b;
  return x.data.subarray(r * width, (r + 1) * width);
}

const dot = (a: Row, b: Row) => a.reduce((s, v, i) => s + v * b[i], 0);
const cosine = (a: Row, b: Row) => dot(a, b) / (Math.max(Math.sqrt(dot(a, a)), 1e-8) * Math.max(Math.sqrt(dot(b, b)), 1e-8));

function perCombo(b: number, table: number[][], f: (b: number, row: number[]) => number): Nd {
  const out = Nd.zeros([b, table.length]);
  for (let s = 0; s < b; s++) table.forEach((row, c) => (out.data[s * table.length + c] = f(s, row)));
  return out;
}

export function simsiamScoresRef(p: Nd, z: Nd, table: number[][]): Nd {
  return perCombo(p.shape[1], table, (b, [i, j]) => -0.5 * (cosine(viewRow(p, i, b), viewRow(z, j, b)) + cosine(viewRow(p, j, b), viewRow(z, i, b))));
}

/** NT-Xent on the 2B rows of views i and j, per sample: ℓ_(i,b) + ℓ_(j,b). */
export function simclrScoresRef(z: Nd, table: number[][], temp: number): Nd {
  const nb = z.shape[1];
  const unit = (v: number, b: number) => {
    const r = viewRow(z, v, b);
    const n = Math.max(Math.sqrt(dot(r, r)), 1e-12);
    return r.map((x) => x / n);
  };
  return perCombo(nb, table, (b, [i, j]) => {
    const rows = [...Array(nb).keys()].map((k) => unit(i, k)).concat([...Array(nb).keys()].map((k) => unit(j, k)));
    const loss = (r: number, pos: number) => {
      const logits = rows.map((x, k) => (k === r ? -Infinity : dot(rows[r], x) / temp));
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0));
      return lse - logits[pos];
    };
    return loss(b, nb + b) + loss(nb + b, b);
  });
}

function softmax(x: Row, center: Row, temp: number): number[] {
  const zz = [...x].map((v, k) => (v - center[k]) / temp);
  const m = Math.max(...zz);
  const e = zz.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function logSoftmax(x: Row, temp: number): number[] {
  const zz = [...x].map((v) => v / temp);
  const m = Math.max(...zz);
  const lse = m + Math.log(zz.reduce((s, v) => s + Math.exp(v - m), 0));
  return zz.map((v) => v - lse);
}

const ce = (q: number[], logp: number[]) => -q.reduce((s, v, k) => s + v * logp[k], 0);

export interface DinoRefOptions {
  teacherTemp: number;
  studentTemp: number;
}

/** Σ_{t ∈ {row[0], row[1]}} Σ_{v ∈ views, v ≠ t} CE(q_t, log p_v) of sample b. */
function crossSum(student: Nd, teacher: Nd, center: Nd, o: DinoRefOptions, b: number, teachers: number[], views: number[]): number {
  let s = 0;
  for (const t of teachers) {
    const q = softmax(viewRow(teacher, t, b), center.data, o.teacherTemp);
    for (const v of views) if (v !== t) s += ce(q, logSoftmax(viewRow(student, v, b), o.studentTemp));
  }
  return s;
}

export function dinoScoresRef(student: Nd, teacher: Nd, center: Nd, o: DinoRefOptions, table: number[][]): Nd {
  return perCombo(student.shape[1], table, (b, row) => crossSum(student, teacher, center, o, b, row.slice(0, 2), row));
}

export interface IbotRefInputs {
  studentCls: Nd;
  teacherCls: Nd;
  studentPatch: Nd;
  teacherPatch: Nd;
  masks: Nd;
  center: Nd;
  center2: Nd;
}

export function ibotScoresRef(x: IbotRefInputs, o: DinoRefOptions & { teacherPatchTemp: number; lambda1: number; lambda2: number }, table: number[][]): Nd {
  const [vs, nb] = x.studentCls.shape;
  const g = x.teacherCls.shape[0];
  const [, , p, k2] = x.studentPatch.shape;
  const locals = [...Array(vs - g).keys()].map((l) => g + l);
  const patchTerm = (v: number, b: number) => {
    const sp = viewRow(x.studentPatch, v, b);
    const tp = viewRow(x.teacherPatch, v, b);
    const m = viewRow(x.masks, v, b);
    let s = 0;
    for (let k = 0; k < p; k++) {
      const q = softmax(tp.subarray(k * k2, (k + 1) * k2), x.center2.data, o.teacherPatchTemp);
      s += m[k] * ce(q, logSoftmax(sp.subarray(k * k2, (k + 1) * k2), o.studentTemp));
    }
    return s / Math.max(m.reduce((a, c) => a + c, 0), 1);
  };
  return perCombo(nb, table, (b, [ga, gb]) => {
    const cls = crossSum(x.studentCls, x.teacherCls, x.center, o, b, [ga, gb], [ga, gb, ...locals]);
    return (o.lambda1 * cls) / (2 + 2 * locals.length) + (o.lambda2 / 2) * (patchTerm(ga, b) + patchTerm(gb, b));
  });
}
