// torch.optim.AdamW: p ← p·(1 − lr·wd), then the Adam step with bias corrections
// (step size lr / (1 − β₁ᵗ), denominator √v / √(1 − β₂ᵗ) + ε). One fused dispatch per parameter.

import type { Tensor } from '../engine.js';
import { dispatchUpdate } from './update.js';
import { Optimizer, type GroupHyper, type GroupSpec, type ParamState } from './optimizer.js';

/** AdamW's hyperparameters of one parameter group. */
export interface AdamWHyper extends GroupHyper {
  betas: [number, number];
  eps: number;
}

/** AdamW (decoupled weight decay), as torch.optim.AdamW. */
export class AdamW extends Optimizer<AdamWHyper> {
  constructor(params: Tensor[] | GroupSpec<AdamWHyper>[], opts: Partial<AdamWHyper> = {}) {
    // PyTorch's defaults (note weight decay 1e-2, unlike Adam's 0).
    super('AdamW', params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, ...opts });
  }

  protected stateNames(): string[] {
    return ['expAvg', 'expAvgSq'];
  }

  protected validate(g: AdamWHyper): void {
    const [b1, b2] = g.betas;
    if (!(g.lr >= 0) || !(g.eps >= 0) || !(g.weightDecay >= 0) || !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) {
      throw new Error(`AdamW: invalid lr ${g.lr}, betas [${g.betas}], eps ${g.eps} or weight decay ${g.weightDecay}`);
    }
  }

  protected update(p: Tensor, grad: Tensor, st: ParamState, g: AdamWHyper): void {
    const [beta1, beta2] = g.betas;
    // Bias corrections in float64 on the CPU: β^t underflows nothing here and f32 would lose digits of 1 − β₂ᵗ.
    const stepSize = g.lr / (1 - beta1 ** st.step);
    const bc2Rsqrt = 1 / Math.sqrt(1 - beta2 ** st.step);
    dispatchUpdate('adamw', p, grad, [st.buffers.expAvg, st.buffers.expAvgSq], {
      lr: g.lr,
      weightDecay: g.weightDecay,
      beta1,
      beta2,
      eps: g.eps,
      stepSize,
      bc2Rsqrt,
    });
  }
}
