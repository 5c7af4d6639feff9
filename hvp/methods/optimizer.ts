// The optimizer a run asks for (`optimizer: sgd | adamw | lars`), built the same way for every method, and
// the per-step schedules the SGD-style methods share: each method passes its parameter groups (a
// group may carry its own weight decay, as DINO's norms and biases do) and the hyper-parameters come
// from the configuration.

import { optim, type Tensor } from '../../engine/index.js';
import type { TrainConfig } from '../train/config.js';
import type { AnyOptimizer } from './method.js';

export interface ParamGroupSpec {
  params: Tensor[];
  weightDecay?: number;
}

/**
 * SGD (momentum `momentum`), AdamW (PyTorch's betas 0.9/0.999, eps 1e-8) or LARS (momentum `momentum`,
 * trust coefficient `larsEta`; 1-d parameters excluded from its decay and ratio whatever their group) over
 * `groups`, at `lr`.
 */
export function buildOptimizer(c: TrainConfig, groups: ParamGroupSpec[], lr: number): AnyOptimizer {
  const specs = groups.map((g) => (g.weightDecay === undefined ? { params: g.params } : { params: g.params, weightDecay: g.weightDecay }));
  if (c.optimizer === 'adamw') return new optim.AdamW(specs, { lr, weightDecay: c.weightDecay });
  if (c.optimizer === 'lars') return new optim.LARS(specs, { lr, momentum: c.momentum, weightDecay: c.weightDecay, eta: c.larsEta });
  return new optim.SGD(specs, { lr, momentum: c.momentum, weightDecay: c.weightDecay });
}
