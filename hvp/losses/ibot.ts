// iBOT's loss (Zhou et al. 2022; bytedance/ibot main_ibot.py, iBOTLoss): DINO's [CLS] objective plus
// masked image modelling, a cross-entropy between the teacher's patch distributions (unmasked input)
// and the student's (masked input) at the masked positions of each global view, averaged per image
// over its masked patches, then over images. Patches have their own centre and temperature schedule.

import type { Engine } from '../../engine/index.js';
import { fmt, nn, sameShape, Tensor } from '../../engine/index.js';
import { add, clamp, concat, div, logSoftmax, mean, mul, neg, reshape, sum } from '../../engine/ops/index.js';
import { checkViews, crossViewSum, emaInto, scheduledTemp, teacherProbs, teacherTempSchedule } from './dino.js';

/** Dimensions, temperatures and weights of iBOT's loss. */
export interface IbotLossOptions {
  /** K of the [CLS] head. */
  outDim: number;
  /** K of the patch head (equal to outDim when the head is shared). */
  patchOutDim: number;
  nGlobal?: number;
  nLocal: number;
  warmupTeacherTemp?: number;
  teacherTemp?: number;
  warmupTeacherPatchTemp?: number;
  teacherPatchTemp?: number;
  warmupTeacherTempEpochs?: number;
  epochs: number;
  studentTemp?: number;
  centerMomentum?: number;
  centerMomentum2?: number;
  /** Weight of the [CLS] term. */
  lambda1?: number;
  /** Weight of the patch term. */
  lambda2?: number;
  /** The patch temperature holds its warm-up value until masked modelling starts (iBOT's pred_start_epoch). */
  mimStartEpoch?: number;
}

/** Head outputs of the global views, stacked view-major: cls [G·B, K], patch [G·B, P, K2]. */
export interface IbotOutputs {
  cls: Tensor;
  patch: Tensor;
}

/** The weighted terms: scalars, or [B] per-sample values whose batch means are the scalars. */
export interface IbotLossTerms {
  cls: Tensor;
  patch: Tensor;
  loss: Tensor;
}

/** iBOT's loss ([CLS] and masked-patch terms, centres and schedules), as in bytedance/ibot. */
export class IbotLoss extends nn.Module {
  readonly center: Tensor;
  /** [1, 1, K2], the patch centre (iBOT's `center2`). */
  readonly center2: Tensor;
  readonly teacherTempSchedule: number[];
  readonly teacherPatchTempSchedule: number[];
  readonly nGlobal: number;
  readonly ncrops: number;
  private readonly o: Required<IbotLossOptions>;

  constructor(engine: Engine, opts: IbotLossOptions) {
    super();
    const warm = opts.warmupTeacherTemp ?? 0.04;
    const warm2 = opts.warmupTeacherPatchTemp ?? 0.04;
    this.o = {
      nGlobal: 2,
      warmupTeacherTemp: warm,
      teacherTemp: warm,
      warmupTeacherPatchTemp: warm2,
      teacherPatchTemp: 0.07,
      warmupTeacherTempEpochs: 0,
      studentTemp: 0.1,
      centerMomentum: 0.9,
      centerMomentum2: 0.9,
      lambda1: 1,
      lambda2: 1,
      mimStartEpoch: 0,
      ...opts,
    };
    const o = this.o;
    this.nGlobal = o.nGlobal;
    this.ncrops = o.nGlobal + o.nLocal;
    this.teacherTempSchedule = teacherTempSchedule(o.warmupTeacherTemp, o.teacherTemp, o.warmupTeacherTempEpochs, o.epochs);
    this.teacherPatchTempSchedule = teacherTempSchedule(
      o.warmupTeacherPatchTemp, o.teacherPatchTemp, o.warmupTeacherTempEpochs, o.epochs, o.mimStartEpoch,
    );
    this.center = this.registerBuffer('center', engine.zeros([1, o.outDim]));
    this.center2 = this.registerBuffer('center2', engine.zeros([1, 1, o.patchOutDim]));
  }

  /**
   * iBOT's forward: `student` holds the global views' outputs (masked input), `studentLocalCls` the
   * local views' [CLS] outputs [L·B, K] (or null), `teacher` the global views' outputs, and `masks` the
   * [G·B, P] masks of the student's global views (1 = masked: an f32 0/1 tensor, or host values where
   * nonzero = masked; patches
   * row-major as the ViT orders them). Both centres move after the loss. With `perSample`, each term
   * is returned per sample ([B]; the HVP score is its `loss`) and the centres stay where they are.
   */
  forward(
    student: IbotOutputs,
    teacher: IbotOutputs,
    studentLocalCls: Tensor | null,
    masks: Tensor | ArrayLike<number>,
    epoch: number,
    opts: { perSample?: boolean } = {},
  ): IbotLossTerms {
    const o = this.o;
    const allCls = studentLocalCls ? concat([student.cls, studentLocalCls], 0) : student.cls;
    const b = checkViews('ibot_loss', allCls, teacher.cls, this.ncrops, this.nGlobal, o.outDim);
    const m = this.maskTensor(student, teacher, masks, b);
    const temp = scheduledTemp('ibot_loss', this.teacherTempSchedule, epoch);
    const temp2 = scheduledTemp('ibot_loss', this.teacherPatchTempSchedule, epoch);

    const clsTerms = this.nGlobal * this.ncrops - this.nGlobal;
    const clsSum = crossViewSum(allCls, teacherProbs(teacher.cls, this.center, temp), this.ncrops, o.studentTemp);
    const cls = mul(clsSum, o.lambda1 / clsTerms);
    const patchSum = this.maskedPatchSum(student.patch, teacherProbs(teacher.patch, this.center2, temp2), m, b);
    const patch = mul(patchSum, o.lambda2 / this.nGlobal);
    if (opts.perSample) return { cls, patch, loss: add(cls, patch) };

    const terms = { cls: mean(cls), patch: mean(patch) };
    this.updateCenter(teacher);
    return { ...terms, loss: add(terms.cls, terms.patch) };
  }

  /** Σ over global views of each image's mean CE over its masked patches (at least 1 in the count): [B]. */
  private maskedPatchSum(studentPatch: Tensor, probs: Tensor, masks: Tensor, b: number): Tensor {
    const logp = logSoftmax(div(studentPatch, this.o.studentTemp), -1);
    const ce = neg(sum(mul(probs, logp), -1));
    const perImage = div(sum(mul(ce, masks), -1), clamp(sum(masks, -1), 1));
    return sum(reshape(perImage, [this.nGlobal, b]), 0);
  }

  private maskTensor(student: IbotOutputs, teacher: IbotOutputs, masks: Tensor | ArrayLike<number>, b: number): Tensor {
    const rows = this.nGlobal * b;
    const s = student.patch.shape;
    const k2 = this.o.patchOutDim;
    if (s.length !== 3 || s[0] !== rows || s[2] !== k2 || !sameShape(s, teacher.patch.shape) || !sameShape(student.cls.shape, teacher.cls.shape)) {
      throw new Error(
        `ibot_loss: expects student and teacher patch outputs [${rows}, P, ${k2}] and [CLS] outputs of equal shapes, ` +
          `got patches ${fmt(s)} and ${fmt(teacher.patch.shape)}, [CLS] ${fmt(student.cls.shape)} and ${fmt(teacher.cls.shape)}`,
      );
    }
    const shape = [rows, s[1]];
    if (!(masks instanceof Tensor)) {
      if (masks.length !== rows * s[1]) throw new Error(`ibot_loss: ${masks.length} mask values for patches ${fmt(s)} (expects ${fmt(shape)})`);
      return student.patch.engine.tensor(Float32Array.from(masks, (v) => (v ? 1 : 0)), shape);
    }
    if (!sameShape(masks.shape, shape) || masks.dtype !== 'f32') {
      throw new Error(`ibot_loss: masks ${masks} do not match patches ${fmt(s)} (expects f32 ${fmt(shape)})`);
    }
    return masks;
  }

  /** Both centres ← EMA of this batch's teacher means ([CLS] over images; patches over images and patches). */
  updateCenter(teacher: IbotOutputs): void {
    const engine = teacher.cls.engine;
    const cls = engine.noGrad(() => mean(teacher.cls, 0, true));
    const patch = engine.noGrad(() => mean(teacher.patch, [0, 1], true));
    emaInto(this.center, cls, this.o.centerMomentum);
    emaInto(this.center2, patch, this.o.centerMomentum2);
    cls.dispose();
    patch.dispose();
  }
}
