// iBOT (Zhou et al. 2022) as an HVP method: DINO's [CLS] objective plus masked patch modelling on the
// global views. Block masks are drawn once per candidate global view and step; the student sees the
// masked views, the teacher the unmasked ones. Only the global pair (even × odd) is selected; every
// local crop is kept (docs/method.md §2). The pair score is λ1·[CLS] term + λ2·patch term per sample.

import { ops, type Rng, type Tensor } from '../../engine/index.js';
import { IbotHead } from '../../models/heads.js';
import type { VisionTransformer } from '../../models/vit.js';
import { IbotLoss, type IbotOutputs } from '../losses/index.js';
import { BlockMaskingGenerator } from '../masks.js';
import { ibotCombinations, scoreIbot, type TableLike } from '../select/index.js';
import { stepRng } from '../train/rng.js';
import { buildBackbone } from './backbone.js';
import { dinoGroups, TeacherStudentModel, teacherOf, teacherStudentOptim, Tower } from './dino.js';
import type { Method, MethodInit, StepContext } from './method.js';

/** [CLS] and patch outputs of the global views; the student's with its masks. */
function tokens(tower: Tower, x: Tensor, mask?: Tensor, rng?: Rng): IbotOutputs {
  const vit = tower.net.module as VisionTransformer;
  const t = vit.forwardTokens(x, { mask, rng });
  const out = (tower.head as IbotHead).forwardTokens(t);
  t.dispose();
  return out;
}

export function createIbot(init: MethodInit): Method {
  const { engine, config: c, rng } = init;
  const headOpts = { normLastLayer: c.normLastLayer, freezeLastLayer: c.freezeLastLayer, sharedHead: true };
  const studentNet = buildBackbone(engine, c, init.channels, rng);
  const student = new Tower(studentNet, new IbotHead(engine, studentNet.featureDim, c.outDim, rng, headOpts));
  const teacher = teacherOf(student, () => {
    const net = buildBackbone(engine, { ...c, dropPathRate: 0 }, init.channels, rng);
    return new Tower(net, new IbotHead(engine, net.featureDim, c.outDim, rng, headOpts));
  });
  const loss = new IbotLoss(engine, {
    outDim: c.outDim,
    patchOutDim: c.outDim,
    nLocal: c.localCrops,
    teacherTemp: c.teacherTemp,
    warmupTeacherTemp: c.warmupTeacherTemp,
    teacherPatchTemp: c.teacherTemp,
    warmupTeacherPatchTemp: c.warmupTeacherTemp,
    warmupTeacherTempEpochs: c.warmupTeacherTempEpochs,
    epochs: c.epochs,
    studentTemp: c.studentTemp,
    lambda1: c.lambda1,
    lambda2: c.lambda2,
  });
  const model = new TeacherStudentModel(student, teacher, 'ibot_loss', loss);
  const opt = teacherStudentOptim(c, student, teacher, init.stepsPerEpoch, init.totalSteps);
  const grid = c.size / c.patchSize;
  const masking = new BlockMaskingGenerator();
  const epochOf = (ctx: StepContext) => Math.min(ctx.epoch, c.epochs - 1);

  // One mask per candidate global view and step ([G·B, P], 1 = masked), the same in score and train.
  let masks: { step: number; tensor: Tensor } | null = null;
  const masksAt = (ctx: StepContext, b: number): Tensor => {
    if (masks?.step === ctx.step) return masks.tensor;
    masks?.tensor.dispose();
    const r = stepRng(c.seed, ctx.step, 3);
    const p = grid * grid;
    // Drawn view-major for the global batch; a data-parallel rank keeps its samples' rows.
    const all = ctx.shard?.batch ?? b;
    const [lo, hi] = ctx.shard ? [ctx.shard.lo, ctx.shard.hi] : [0, b];
    if (hi - lo !== b) throw new Error(`ibot: a batch of ${b} does not match this rank's share [${lo}, ${hi})`);
    const data = new Float32Array(c.views * b * p);
    for (let i = 0, row = 0; i < c.views * all; i++) {
      const mask = masking.generate(r, grid, grid, ctx.epoch);
      if (i % all >= lo && i % all < hi) data.set(mask, row++ * p);
    }
    masks = { step: ctx.step, tensor: engine.keep(engine.tensor(data, [c.views * b, p])) };
    return masks.tensor;
  };

  return {
    name: 'ibot',
    model,
    backbone: studentNet,
    optimizer: opt.optimizer,
    groups: dinoGroups(c),
    combinations: ibotCombinations(c.views),
    score(views: Tensor[], rows: TableLike, ctx: StepContext): Tensor {
      const b = views[0].shape[0] / c.views;
      const m = masksAt(ctx, b);
      const t = tokens(teacher, views[0]);
      const s = tokens(student, views[0], m);
      const local = views.length > 1 ? student.forward(views[1]) : null;
      const e = epochOf(ctx);
      const temps = { teacherTemp: loss.teacherTempSchedule[e], teacherPatchTemp: loss.teacherPatchTempSchedule[e] };
      const g = c.views;
      const view3 = (x: Tensor) => x.reshape(g, b, ...x.shape.slice(1));
      const studentCls = local ? ops.concat([s.cls, local], 0) : s.cls;
      const scores = scoreIbot(
        {
          studentCls: studentCls.reshape(-1, b, c.outDim),
          teacherCls: view3(t.cls),
          studentPatch: view3(s.patch),
          teacherPatch: view3(t.patch),
          masks: view3(m),
        },
        { center: loss.center, center2: loss.center2, ...temps, studentTemp: c.studentTemp, lambda1: c.lambda1, lambda2: c.lambda2 },
        rows,
      );
      for (const x of [t.cls, t.patch, s.cls, s.patch, studentCls, local]) x?.dispose();
      return scores;
    },
    async trainStep(views: Tensor[], ctx: StepContext, gather): Promise<Tensor> {
      opt.schedule(ctx.step);
      const b = views[0].shape[0] / 2;
      const m = gather(masksAt(ctx, b), 0);
      const dropRng = stepRng(c.seed, ctx.step, 2);
      const t = engine.noGrad(() => tokens(teacher, views[0]));
      const s = tokens(student, views[0], m, dropRng);
      const local = views.length > 1 ? student.forward(views[1], dropRng) : null;
      const terms = loss.forward(s, t, local, m, epochOf(ctx));
      terms.loss.backward();
      await init.sync?.gradients(student.parameters());
      await init.sync?.average([loss.center, loss.center2]);
      opt.update(ctx.step, ctx.epoch);
      return terms.loss;
    },
  };
}
