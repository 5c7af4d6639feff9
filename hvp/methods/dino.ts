// DINO (Caron et al. 2021) as an HVP method. The loader draws G global views (even ones with global
// transform 1, odd ones with transform 2: slot A / slot B) and L local crops; a combination is one
// global per slot plus n of the L locals (docs/method.md §2). The selection forward runs the teacher on
// every global and the student on every view; each combination's score sums CE(q_t, log p_v) over its
// two teacher globals and its student views v ≠ t. Training is DINO's step on the chosen views:
// AdamW (or SGD, `optimizer`) with warm-up and cosine lr, cosine weight decay, gradient clipping, the last layer frozen in
// the first epoch, and the teacher an EMA of the student with a cosine momentum.

import { nn, ops, optim, type Rng, type Tensor } from '../../engine/index.js';
import { DinoHead } from '../../models/heads.js';
import { DinoLoss } from '../losses/index.js';
import { dinoCombinations, scoreDino, type TableLike } from '../select/index.js';
import { effectiveLr, type TrainConfig } from '../train/config.js';
import { stepRng } from '../train/rng.js';
import { buildBackbone, type StudentBackbone } from './backbone.js';
import type { AnyOptimizer, Method, MethodInit, StepContext, ViewGroup } from './method.js';
import { buildOptimizer } from './optimizer.js';
import { backwardShare } from './pair-method.js';

export class Tower extends nn.Module {
  readonly backbone: nn.Module;
  readonly head: DinoHead;
  constructor(readonly net: StudentBackbone, head: DinoHead) {
    super();
    this.backbone = this.registerModule('backbone', net.module);
    this.head = this.registerModule('head', head);
  }
  forward(x: Tensor, rng?: Rng): Tensor {
    return this.head.forward(this.net.forward(x, rng));
  }
}

/**
 * Student at the top level (so `backbone.*` is the student's backbone, as evaluation expects), the
 * teacher below `teacher.*` and the loss's centres below the loss's name, as DINO saves them.
 */
export class TeacherStudentModel extends nn.Module {
  readonly backbone: nn.Module;
  readonly head: nn.Module;
  readonly teacher: Tower;
  constructor(readonly student: Tower, teacher: Tower, lossName: string, loss: nn.Module) {
    super();
    this.backbone = this.registerModule('backbone', student.backbone);
    this.head = this.registerModule('head', student.head);
    this.teacher = this.registerModule('teacher', teacher);
    this.registerModule(lossName, loss);
  }
}

export function dinoGroups(c: TrainConfig): ViewGroup[] {
  const globals = Array.from({ length: c.views }, (_, i) => (i % 2 === 0 ? 'dino-global-1' : 'dino-global-2'));
  const groups: ViewGroup[] = [{ name: 'globals', pipelines: globals, size: c.size, scale: [c.scaleMin, c.scaleMax] }];
  if (c.localCrops > 0) {
    groups.push({ name: 'locals', pipelines: new Array<string>(c.localCrops).fill('dino-local'), size: c.localSize, scale: [c.localScaleMin, c.localScaleMax] });
  }
  return groups;
}

/** DINO's get_params_groups: weight decay on weight matrices only, none on biases and norms. */
function paramGroups(m: nn.Module): { params: Tensor[]; weightDecay?: number }[] {
  const params = m.parameters().filter((p) => p.requiresGrad);
  return [{ params: params.filter((p) => p.ndim > 1) }, { params: params.filter((p) => p.ndim <= 1), weightDecay: 0 }];
}

/** Schedule value at `step` (the last value past the end). */
function at(schedule: Float64Array, step: number): number {
  return schedule[Math.min(step, schedule.length - 1)];
}

/**
 * DINO's cosine_scheduler over the run's `totalSteps` (--max-steps when it cuts the epochs short, as
 * for every method: docs/method.md §5), with `warmupSteps` of linear warm-up (at most the whole run).
 */
function runSchedule(base: number, final: number, totalSteps: number, warmupSteps = 0): Float64Array {
  return optim.cosineSchedule(base, final, totalSteps, 1, Math.min(warmupSteps, totalSteps));
}

/** The student/teacher pair's optimisation, shared by DINO and iBOT. */
export interface TeacherStudentOptim {
  optimizer: AnyOptimizer;
  /** lr and weight decay of this step. */
  schedule(step: number): void;
  /** Clip, drop the frozen last layer's gradients, step, zero, then move the teacher. */
  update(step: number, epoch: number): void;
}

export function teacherStudentOptim(c: TrainConfig, student: Tower, teacher: Tower, stepsPerEpoch: number, totalSteps: number): TeacherStudentOptim {
  const lr = effectiveLr(c);
  const optimizer = buildOptimizer(c, paramGroups(student), lr);
  const lrs = runSchedule(lr, c.minLr, totalSteps, c.warmupEpochs * stepsPerEpoch);
  const wds = runSchedule(c.weightDecay, c.weightDecayEnd, totalSteps);
  const momenta = runSchedule(c.momentumTeacher, 1, totalSteps);
  const trainable = student.parameters().filter((p) => p.requiresGrad);
  return {
    optimizer,
    schedule(step) {
      optimizer.setLr('all', at(lrs, step));
      optimizer.setWeightDecay(0, at(wds, step));
    },
    update(step, epoch) {
      if (c.clipGrad > 0) optim.clipGradients(trainable, c.clipGrad);
      student.head.cancelLastLayerGrad(epoch);
      optimizer.step();
      student.zeroGrad();
      optim.emaUpdate(teacher.parameters(), student.parameters(), at(momenta, step));
    },
  };
}

/** A teacher tower that starts as a copy of the student (DINO's load_state_dict) and gets no gradients. */
export function teacherOf(student: Tower, build: () => Tower): Tower {
  const teacher = build();
  for (const p of teacher.parameters()) p.requiresGrad = false;
  // An EMA with momentum 0 is a copy.
  optim.emaUpdate(teacher.parameters(), student.parameters(), 0);
  return teacher;
}

export function createDino(init: MethodInit): Method {
  const { engine, config: c, rng } = init;
  const headOpts = { normLastLayer: c.normLastLayer, freezeLastLayer: c.freezeLastLayer, useBn: false };
  const studentNet = buildBackbone(engine, c, init.channels, rng);
  const student = new Tower(studentNet, new DinoHead(engine, studentNet.featureDim, c.outDim, rng, headOpts));
  const teacher = teacherOf(student, () => {
    const net = buildBackbone(engine, { ...c, dropPathRate: 0 }, init.channels, rng);
    return new Tower(net, new DinoHead(engine, net.featureDim, c.outDim, rng, headOpts));
  });
  const nUsed = c.localCropsUsed || c.localCrops;
  const loss = new DinoLoss(engine, {
    outDim: c.outDim,
    ncrops: 2 + nUsed,
    teacherTemp: c.teacherTemp,
    warmupTeacherTemp: c.warmupTeacherTemp,
    warmupTeacherTempEpochs: c.warmupTeacherTempEpochs,
    epochs: c.epochs,
    studentTemp: c.studentTemp,
  });
  const model = new TeacherStudentModel(student, teacher, 'dino_loss', loss);
  const opt = teacherStudentOptim(c, student, teacher, init.stepsPerEpoch, init.totalSteps);
  const tempAt = (epoch: number) => loss.teacherTempSchedule[Math.min(epoch, loss.teacherTempSchedule.length - 1)];
  // One drop-path stream per step, shared by its micro-batches so their draws continue rather than repeat.
  let drop: { step: number; rng: Rng } | null = null;
  const dropRngAt = (step: number): Rng => (drop?.step === step ? drop.rng : (drop = { step, rng: stepRng(c.seed, step, 2) }).rng);
  // The teacher sees only its micro-batch; the centre moves once per step by the full batch's mean.
  const accumulate = (views: Tensor[], ctx: StepContext, _gather: unknown, microBatches: number): Tensor => {
    const teacherOut = engine.noGrad(() => teacher.forward(views[0]));
    const dropRng = dropRngAt(ctx.step);
    const outs = views.map((v) => student.forward(v, dropRng));
    const studentOut = outs.length > 1 ? ops.concat(outs, 0) : outs[0];
    const l = loss.forward(studentOut, teacherOut, Math.min(ctx.epoch, c.epochs - 1), { deferCenter: microBatches > 1 || !!init.sync });
    backwardShare(l, microBatches);
    return l;
  };
  const update = async (ctx: StepContext): Promise<void> => {
    if (init.sync) {
      // Every rank's share is the same size, so the mean over ranks of the pending teacher sums,
      // divided by this rank's row count, is the global batch's teacher mean (DINO's update_center).
      await init.sync.gradients(student.parameters());
      const pending = loss.pendingCenterSum;
      if (pending) await init.sync.average([pending]);
    }
    opt.schedule(ctx.step);
    loss.applyPendingCenter();
    opt.update(ctx.step, ctx.epoch);
  };

  return {
    name: 'dino',
    model,
    backbone: studentNet,
    optimizer: opt.optimizer,
    groups: dinoGroups(c),
    combinations: dinoCombinations(c.views, c.localCrops, nUsed),
    score(views: Tensor[], rows: TableLike, ctx: StepContext): Tensor {
      const b = views[0].shape[0] / c.views;
      const t = teacher.forward(views[0]);
      const s = views.map((v) => student.forward(v));
      const sAll = s.length > 1 ? ops.concat(s, 0) : s[0];
      const scores = scoreDino(
        sAll.reshape(-1, b, c.outDim),
        t.reshape(c.views, b, c.outDim),
        loss.center.reshape(c.outDim),
        { teacherTemp: tempAt(ctx.epoch), studentTemp: c.studentTemp },
        rows,
      );
      for (const x of [t, sAll, ...s]) x.dispose();
      return scores;
    },
    async trainStep(views: Tensor[], ctx: StepContext, gather): Promise<Tensor> {
      const l = accumulate(views, ctx, gather, 1);
      await update(ctx);
      return l;
    },
    accumulate,
    update,
  };
}
