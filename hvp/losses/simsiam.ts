// SimSiam's loss (Chen & He 2021; facebookresearch/simsiam main_simsiam.py): the negative cosine
// similarity between each view's prediction and the other view's projection, whose gradient is
// stopped: L = -½[cos(p1, sg z2) + cos(p2, sg z1)], averaged over the batch.

import type { Tensor } from '../../engine/index.js';
import { fmt, sameShape } from '../../engine/index.js';
import { add, cosineSimilarity, mean, mul } from '../../engine/ops/index.js';

/** Options of SimSiam's symmetric negative-cosine loss. */
export interface PairLossOptions {
  /** Return the loss of every sample ([B], the HVP pair score) instead of the batch mean. */
  perSample?: boolean;
}

/** p1, p2 = predictor outputs and z1, z2 = projector outputs of views 1 and 2, all [B, D]. */
export function simsiamLoss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor, opts: PairLossOptions = {}): Tensor {
  const shapes = [p1, p2, z1, z2].map((t) => t.shape);
  if (p1.ndim !== 2 || !shapes.every((s) => sameShape(s, p1.shape))) {
    throw new Error(`simsiam_loss: p1, p2, z1, z2 must all be [B, D], got ${shapes.map(fmt).join(', ')}`);
  }
  // detach() is the stop-gradient: z reaches the loss only as a target, as in SimSiam's builder.
  const c1 = cosineSimilarity(p1, z2.detach(), 1, 1e-8);
  const c2 = cosineSimilarity(p2, z1.detach(), 1, 1e-8);
  const perSample = mul(add(c1, c2), -0.5);
  return opts.perSample ? perSample : mean(perSample);
}
