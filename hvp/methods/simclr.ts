// SimCLR (Chen et al. 2020) as an HVP method: a 2-layer projector and NT-Xent with τ = 0.1; a pair's
// score is ℓ_(i,b) + ℓ_(j,b) with negatives from the whole batch's views i and j, computed for all
// pairs at once from one Gram matrix (docs/method.md §2).

import { nn, ops, type Tensor } from '../../engine/index.js';
import { SimClrProjector } from '../../models/heads.js';
import { ntXentLoss } from '../losses/index.js';
import { scoreSimClr, type TableLike } from '../select/index.js';
import { effectiveLr } from '../train/config.js';
import { buildBackbone, type StudentBackbone } from './backbone.js';
import type { Method, MethodInit, StepContext } from './method.js';
import { buildOptimizer } from './optimizer.js';
import { backwardShare, clip, cosineLr, layerScores, pairGroups, pairTable, perViewOutputs, weightDecayAt } from './pair-method.js';

class SimClrModel extends nn.Module {
  readonly backbone: nn.Module;
  readonly projector: SimClrProjector;
  constructor(readonly student: StudentBackbone, projector: SimClrProjector) {
    super();
    this.backbone = this.registerModule('backbone', student.module);
    this.projector = this.registerModule('projector', projector);
  }
  embed(x: Tensor): Tensor {
    return this.projector.forward(this.student.forward(x));
  }
}

export function createSimClr(init: MethodInit): Method {
  const { engine, config: c, rng } = init;
  const student = buildBackbone(engine, c, init.channels, rng);
  const model = new SimClrModel(student, new SimClrProjector(engine, student.featureDim, rng, { outDim: c.dim }));
  const lr = effectiveLr(c);
  const optimizer = buildOptimizer(c, [{ params: model.parameters() }], lr);
  const warmup = c.warmupEpochs * init.stepsPerEpoch;
  // NT-Xent's negatives are the other views of the same (micro-)batch, as in the reference.
  const accumulate = (views: Tensor[], _ctx: StepContext, _gather: unknown, microBatches: number): Tensor => {
    const [x1, x2] = ops.chunk(views[0], 2, 0);
    const loss = ntXentLoss(model.embed(x1), model.embed(x2), { temperature: c.temperature });
    backwardShare(loss, microBatches);
    return loss;
  };
  const update = async (ctx: StepContext): Promise<void> => {
    // Data-parallel: the gradients of every rank's micro-batches, averaged once before the step.
    await init.sync?.gradients(model.parameters());
    optimizer.setLr('all', cosineLr(lr, ctx, warmup, c.minLr));
    optimizer.setWeightDecay('all', weightDecayAt(c, ctx));
    clip(c, model);
    optimizer.step();
    model.zeroGrad();
  };
  return {
    name: 'simclr',
    model,
    backbone: student,
    optimizer,
    groups: pairGroups(c, 'simclr'),
    combinations: pairTable(c),
    score(views: Tensor[], rows: TableLike): Tensor {
      if (c.selectLayer) return layerScores(student, views[0], c.views, c.selectLayer, rows);
      const [z] = perViewOutputs(views[0], c.views, (x) => [model.embed(x)]);
      const scores = scoreSimClr(z, rows, c.temperature);
      z.dispose();
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
