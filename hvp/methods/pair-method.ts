// The part SimSiam and SimCLR share: V candidate views of one pipeline, all pairs i < j (or view 0
// with each other one, `anchor`), one forward per view (each view's batch normalises over its own
// B images, as in the training forward), and optional intermediate-layer selection, where a pair's
// score is minus the cosine of the views' pooled stage activations (lowest similarity = hardest).

import { ops, optim, type nn, type Tensor } from '../../engine/index.js';
import { pairCombinations, scoreSimSiam, type TableLike } from '../select/index.js';
import type { TrainConfig } from '../train/config.js';
import type { StudentBackbone } from './backbone.js';
import type { StepContext, ViewGroup } from './method.js';

export function pairGroups(c: TrainConfig, pipeline: string): ViewGroup[] {
  return [{ name: 'views', pipelines: new Array<string>(c.views).fill(pipeline), size: c.size, scale: [c.scaleMin, c.scaleMax] }];
}

export function pairTable(c: TrainConfig): number[][] {
  return pairCombinations(c.views, { anchor: c.anchor });
}

/** Run `embed` on each of the V views of `views` ([V·B, ...]) separately and stack the outputs: [V, B, D] per output. */
export function perViewOutputs(views: Tensor, count: number, embed: (x: Tensor) => Tensor[]): Tensor[] {
  const parts = ops.chunk(views, count, 0).map((x) => embed(x));
  return parts[0].map((_, o) => {
    const stacked = ops.stack(parts.map((p) => p[o]), 0);
    for (const p of parts) p[o].dispose();
    return stacked;
  });
}

/** Intermediate-layer score: -cos(f_i, f_j) of pooled activations, via the SimSiam scorer with p = z = f. */
export function layerScores(backbone: StudentBackbone, views: Tensor, count: number, layer: string, rows: TableLike): Tensor {
  const [f] = perViewOutputs(views, count, (x) => [backbone.pooledAt(x, layer)]);
  return scoreSimSiam(f, f, rows);
}

/** The cosine learning rate of SimSiam's adjust_learning_rate, evaluated per step. */
export function cosineLr(base: number, ctx: StepContext, warmupSteps = 0, minLr = 0): number {
  if (ctx.step < warmupSteps) return (base * (ctx.step + 1)) / warmupSteps;
  const t = (ctx.step - warmupSteps) / Math.max(1, ctx.totalSteps - warmupSteps);
  return minLr + (base - minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/** Weight decay of this step: a half cosine from `weightDecay` to `weightDecayEnd` (constant when equal), as DINO's. */
export function weightDecayAt(c: TrainConfig, ctx: StepContext): number {
  return cosineLr(c.weightDecay, ctx, 0, c.weightDecayEnd);
}

/** Backpropagate `loss` scaled by 1/microBatches (one of a step's micro-batches); unscaled with one. */
export function backwardShare(loss: Tensor, microBatches: number): void {
  if (microBatches === 1) return loss.backward();
  const share = ops.mul(loss, 1 / microBatches);
  share.backward();
  share.dispose();
}

/** DINO's per-parameter gradient clipping at `clipGrad` (0 = off), for the pair methods too. */
export function clip(c: TrainConfig, model: nn.Module): void {
  if (c.clipGrad > 0) optim.clipGradients(model.parameters(), c.clipGrad);
}
