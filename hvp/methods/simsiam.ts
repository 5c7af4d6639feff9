// SimSiam (Chen & He 2021) as an HVP method: encoder f, projector g, predictor h; the pair score is
// the per-sample training loss -½[cos(p_i, sg z_j) + cos(p_j, sg z_i)] (docs/method.md §2). SGD (or AdamW)
// with a cosine learning rate; the predictor keeps the base rate (fix_pred_lr).

import { nn, ops, type Tensor } from '../../engine/index.js';
import { SimSiamPredictor, SimSiamProjector } from '../../models/heads.js';
import { simsiamLoss } from '../losses/index.js';
import { scoreSimSiam, type TableLike } from '../select/index.js';
import { effectiveLr } from '../train/config.js';
import { buildBackbone, type StudentBackbone } from './backbone.js';
import type { Method, MethodInit, StepContext } from './method.js';
import { buildOptimizer } from './optimizer.js';
import { backwardShare, clip, cosineLr, layerScores, pairGroups, pairTable, perViewOutputs, weightDecayAt } from './pair-method.js';

class SimSiamModel extends nn.Module {
  readonly backbone: nn.Module;
  readonly projector: SimSiamProjector;
  readonly predictor: SimSiamPredictor;
  constructor(readonly student: StudentBackbone, projector: SimSiamProjector, predictor: SimSiamPredictor) {
    super();
    this.backbone = this.registerModule('backbone', student.module);
    this.projector = this.registerModule('projector', projector);
    this.predictor = this.registerModule('predictor', predictor);
  }
  /** [z, p] of one view. */
  embed(x: Tensor): [Tensor, Tensor] {
    const z = this.projector.forward(this.student.forward(x));
    return [z, this.predictor.forward(z)];
  }
}

export function createSimSiam(init: MethodInit): Method {
  const { engine, config: c, rng } = init;
  const student = buildBackbone(engine, c, init.channels, rng);
  const projector = new SimSiamProjector(engine, student.featureDim, rng, { dim: c.dim });
  const predictor = new SimSiamPredictor(engine, rng, { dim: c.dim, predDim: c.predDim });
  const model = new SimSiamModel(student, projector, predictor);
  const lr = effectiveLr(c);
  const optimizer = buildOptimizer(c, [{ params: [...student.module.parameters(), ...projector.parameters()] }, { params: predictor.parameters() }], lr);
  const warmup = c.warmupEpochs * init.stepsPerEpoch;
  // Each view of a pair is its own forward, so batch norm normalises over the (micro-)batch's B images.
  const accumulate = (views: Tensor[], _ctx: StepContext, _gather: unknown, microBatches: number): Tensor => {
    const [x1, x2] = ops.chunk(views[0], 2, 0);
    const [z1, p1] = model.embed(x1);
    const [z2, p2] = model.embed(x2);
    const loss = simsiamLoss(p1, p2, z1, z2);
    backwardShare(loss, microBatches);
    return loss;
  };
  const update = async (ctx: StepContext): Promise<void> => {
    // Data-parallel: the gradients of every rank's micro-batches, averaged once before the step.
    await init.sync?.gradients(model.parameters());
    const now = cosineLr(lr, ctx, warmup, c.minLr);
    optimizer.setLr(0, now);
    optimizer.setLr(1, c.fixPredLr ? lr : now);
    optimizer.setWeightDecay('all', weightDecayAt(c, ctx));
    clip(c, model);
    optimizer.step();
    model.zeroGrad();
  };
  return {
    name: 'simsiam',
    model,
    backbone: student,
    optimizer,
    groups: pairGroups(c, 'simsiam'),
    combinations: pairTable(c),
    score(views: Tensor[], rows: TableLike): Tensor {
      if (c.selectLayer) return layerScores(student, views[0], c.views, c.selectLayer, rows);
      const [z, p] = perViewOutputs(views[0], c.views, (x) => model.embed(x));
      const scores = scoreSimSiam(p, z, rows);
      z.dispose();
      p.dispose();
      return scores;
    },
    async trainStep(views: Tensor[], ctx: StepContext, gather): Promise<Tensor> {
      const loss = accumulate(views, ctx, gather, 1);
      await update(ctx);
      return loss;
    },
    accumulate,
    update,
  };
}
