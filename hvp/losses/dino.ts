// DINO's loss (Caron et al. 2021; facebookresearch/dino main_dino.py, DINOLoss): cross-entropy between
// the centred, sharpened teacher distribution of each global view and the student distribution of
// every other view. The centre is an EMA of the teacher's batch-mean logits, updated after the loss.

import type { Engine, Tensor } from '../../engine/index.js';
import { fmt, nn } from '../../engine/index.js';
import { add, copyInto, div, logSoftmax, matmul, mean, mul, neg, permute, reshape, softmax, sub, sum } from '../../engine/ops/index.js';

/** numpy.linspace(start, stop, num): num points, both ends included (the last one exactly `stop`). */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num <= 0) return [];
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => start + i * step);
  out[num - 1] = stop;
  return out;
}

/**
 * The teacher temperature of every epoch, DINO's concatenate(linspace(warmup, final, warmupEpochs),
 * ones(epochs - warmupEpochs)·final). `holdEpochs` first repeats the warm-up value (iBOT's patch
 * temperature waits for `mim_start_epoch`).
 */
export function teacherTempSchedule(warmupTemp: number, temp: number, warmupEpochs: number, epochs: number, holdEpochs = 0): number[] {
  if (warmupEpochs + holdEpochs > epochs) {
    throw new Error(`teacherTempSchedule: ${holdEpochs} + ${warmupEpochs} warm-up epochs exceed ${epochs} epochs`);
  }
  return [
    ...new Array<number>(holdEpochs).fill(warmupTemp),
    ...linspace(warmupTemp, temp, warmupEpochs),
    ...new Array<number>(epochs - warmupEpochs - holdEpochs).fill(temp),
  ];
}

export function scheduledTemp(op: string, schedule: number[], epoch: number): number {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch >= schedule.length) {
    throw new Error(`${op}: epoch ${epoch} is outside the ${schedule.length}-epoch temperature schedule`);
  }
  return schedule[epoch];
}

/** softmax((logits - center) / temp) along the last axis, off the tape (the teacher gets no gradient). */
export function teacherProbs(logits: Tensor, center: Tensor, temp: number): Tensor {
  return logits.engine.noGrad(() => softmax(div(sub(logits, center), temp), -1));
}

/**
 * CE(q_t, log p_v) = -Σ_k q_t,k · log softmax(s_v / τ_s)_k for every sample b, teacher view t and student
 * view v, as a [B, G, V] tensor: one batched matmul of the [B, G, K] teacher probabilities with the
 * [B, K, V] student log-probabilities. Views are stacked view-major, as DINO's chunk() expects
 * (rows v·B .. v·B+B-1 are view v). HVP's scorers sum entries of this table per combination.
 */
export function crossEntropyTable(studentOut: Tensor, probs: Tensor, views: number, studentTemp: number): Tensor {
  const [rows, k] = studentOut.shape;
  const b = rows / views;
  const g = probs.shape[0] / b;
  const logp = logSoftmax(div(studentOut, studentTemp), -1);
  const s = permute(reshape(logp, [views, b, k]), [1, 2, 0]);
  const q = permute(reshape(probs, [g, b, k]), [1, 0, 2]);
  return neg(matmul(q, s));
}

/** [G, V] constant weights: 1 for every (teacher view t, student view v ≠ t), 0 where they coincide. */
export function crossViewMask(engine: Engine, g: number, v: number): Tensor {
  const m = new Float32Array(g * v).fill(1);
  for (let t = 0; t < Math.min(g, v); t++) m[t * v + t] = 0;
  return engine.tensor(m, [g, v]);
}

/** Σ_t Σ_(v≠t) CE(q_t, log p_v) per sample: [B]. */
export function crossViewSum(studentOut: Tensor, probs: Tensor, views: number, studentTemp: number): Tensor {
  const table = crossEntropyTable(studentOut, probs, views, studentTemp);
  const g = table.shape[1];
  return sum(mul(table, crossViewMask(studentOut.engine, g, views)), [1, 2]);
}

export function checkViews(op: string, studentOut: Tensor, teacherOut: Tensor, views: number, globals: number, k: number): number {
  const bad = () =>
    new Error(
      `${op}: expects student logits [${views}·B, ${k}] and teacher logits [${globals}·B, ${k}], got ${fmt(studentOut.shape)} and ${fmt(teacherOut.shape)}`,
    );
  if (studentOut.ndim !== 2 || teacherOut.ndim !== 2 || studentOut.shape[1] !== k || teacherOut.shape[1] !== k) throw bad();
  const b = teacherOut.shape[0] / globals;
  if (!Number.isInteger(b) || b < 1 || studentOut.shape[0] !== views * b) throw bad();
  return b;
}

/** In place, off the tape: center ← center·m + batchCenter·(1 - m). */
export function emaInto(center: Tensor, batchCenter: Tensor, momentum: number): void {
  center.engine.noGrad(() => {
    const next = add(mul(center, momentum), mul(batchCenter, 1 - momentum));
    copyInto(center, next);
    next.dispose();
  });
}

/** Dimensions, temperatures and centre momentum of DINO's loss. */
export interface DinoLossOptions {
  /** K, the head's output dimension. */
  outDim: number;
  /** Student views per sample: globals + locals. */
  ncrops: number;
  /** Teacher (global) views per sample; DINO uses 2. */
  nGlobal?: number;
  warmupTeacherTemp?: number;
  teacherTemp?: number;
  warmupTeacherTempEpochs?: number;
  epochs: number;
  studentTemp?: number;
  centerMomentum?: number;
}

/** DINO's loss with its centre and teacher-temperature schedule, as in facebookresearch/dino. */
export class DinoLoss extends nn.Module {
  /** [1, K], saved in checkpoints as DINO saves `dino_loss.state_dict()`. */
  readonly center: Tensor;
  readonly teacherTempSchedule: number[];
  readonly outDim: number;
  readonly ncrops: number;
  readonly nGlobal: number;
  readonly studentTemp: number;
  readonly centerMomentum: number;
  /**
   * Under gradient accumulation: the sum of the teacher rows seen by this step's micro-batches so far,
   * and their count (the reference's running_center), applied once by `applyPendingCenter`.
   */
  private pending: { sum: Tensor; rows: number } | null = null;

  constructor(engine: Engine, opts: DinoLossOptions) {
    super();
    this.outDim = opts.outDim;
    this.ncrops = opts.ncrops;
    this.nGlobal = opts.nGlobal ?? 2;
    this.studentTemp = opts.studentTemp ?? 0.1;
    this.centerMomentum = opts.centerMomentum ?? 0.9;
    if (this.ncrops < this.nGlobal || this.nGlobal < 1) {
      throw new Error(`DinoLoss: ncrops (${this.ncrops}) must count the ${this.nGlobal} global views and any local ones`);
    }
    const warm = opts.warmupTeacherTemp ?? 0.04;
    this.teacherTempSchedule = teacherTempSchedule(warm, opts.teacherTemp ?? warm, opts.warmupTeacherTempEpochs ?? 0, opts.epochs);
    this.center = this.registerBuffer('center', engine.zeros([1, this.outDim]));
  }

  /** Cross terms per sample: every teacher view with every student view but itself. */
  get terms(): number {
    return this.nGlobal * this.ncrops - this.nGlobal;
  }

  /**
   * DINO's loss on studentOut [ncrops·B, K] and teacherOut [nGlobal·B, K] (views stacked view-major):
   * the mean over terms and batch, after which the centre moves towards this batch's teacher mean.
   * With `perSample`, the [B] sums over terms instead (the HVP selection score of automl/hvp's
   * `select_forward`): a selection forward, so the centre stays where it is.
   */
  forward(studentOut: Tensor, teacherOut: Tensor, epoch: number, opts: { perSample?: boolean; deferCenter?: boolean } = {}): Tensor {
    checkViews('dino_loss', studentOut, teacherOut, this.ncrops, this.nGlobal, this.outDim);
    const temp = scheduledTemp('dino_loss', this.teacherTempSchedule, epoch);
    const probs = teacherProbs(teacherOut, this.center, temp);
    const perSample = crossViewSum(studentOut, probs, this.ncrops, this.studentTemp);
    if (opts.perSample) return perSample;
    const loss = div(mean(perSample), this.terms);
    if (opts.deferCenter) this.addPendingCenter(teacherOut);
    else this.updateCenter(teacherOut);
    return loss;
  }

  /**
   * With `deferCenter` (one micro-batch of a step): add the teacher rows to the step's pending sum
   * instead of moving the centre, so every micro-batch of the step is centred by the same centre and
   * the centre then moves by the mean over the full batch, as one step on the full batch would.
   */
  private addPendingCenter(teacherOut: Tensor): void {
    const engine = teacherOut.engine;
    engine.noGrad(() => {
      const part = sum(teacherOut, 0, true);
      const prev = this.pending?.sum;
      const next = prev ? add(prev, part) : part;
      if (prev) {
        prev.dispose();
        part.dispose();
      }
      this.pending = { sum: engine.keep(next), rows: (this.pending?.rows ?? 0) + teacherOut.shape[0] };
    });
  }

  /**
   * The teacher rows' sum pending since the last `applyPendingCenter` ([1, K], or null): a data-parallel
   * run averages it over the ranks in place before applying it.
   */
  get pendingCenterSum(): Tensor | null {
    return this.pending?.sum ?? null;
  }

  /** After the last micro-batch: center ← m·center + (1 − m)·(pending sum / rows); a no-op with nothing pending. */
  applyPendingCenter(): void {
    if (!this.pending) return;
    const { sum: total, rows } = this.pending;
    this.pending = null;
    const batchCenter = total.engine.noGrad(() => div(total, rows));
    emaInto(this.center, batchCenter, this.centerMomentum);
    batchCenter.dispose();
    total.dispose();
  }

  /** center ← 0.9·center + 0.1·mean over all teacher rows (DINO's update_center, one process). */
  updateCenter(teacherOut: Tensor): void {
    const batchCenter = teacherOut.engine.noGrad(() => mean(teacherOut, 0, true));
    emaInto(this.center, batchCenter, this.centerMomentum);
    batchCenter.dispose();
  }
}
