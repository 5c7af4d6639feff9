// torch.optim.SGD (dampening 0): d = g + wd·p; buf = μ·buf + d; p -= lr·buf (or lr·(d + μ·buf) with
// Nesterov). One fused dispatch per parameter.

import type { Tensor } from '../engine.js';
import { dispatchUpdate } from './update.js';
import { Optimizer, type GroupHyper, type GroupSpec, type ParamState } from './optimizer.js';

/** SGD's hyperparameters of one parameter group. */
export interface SGDHyper extends GroupHyper {
  momentum: number;
  nesterov: boolean;
}

/** SGD with momentum and weight decay, as torch.optim.SGD. */
export class SGD extends Optimizer<SGDHyper> {
  constructor(params: Tensor[] | GroupSpec<SGDHyper>[], opts: Partial<SGDHyper> & { lr: number }) {
    super('SGD', params, { momentum: 0, weightDecay: 0, nesterov: false, ...opts });
  }

  protected stateNames(g: SGDHyper): string[] {
    return g.momentum !== 0 ? ['momentumBuffer'] : [];
  }

  protected validate(g: SGDHyper): void {
    if (!(g.lr >= 0) || !(g.momentum >= 0) || !(g.weightDecay >= 0)) {
      throw new Error(`SGD: invalid lr ${g.lr}, momentum ${g.momentum} or weight decay ${g.weightDecay}`);
    }
    if (g.nesterov && g.momentum === 0) throw new Error('SGD: Nesterov momentum requires a momentum > 0');
  }

  protected update(p: Tensor, grad: Tensor, st: ParamState, g: SGDHyper): void {
    const buf = st.buffers.momentumBuffer;
    // A group whose momentum was set to 0 after construction keeps its buffer: μ = 0 makes it inert.
    dispatchUpdate(buf ? 'sgd_momentum' : 'sgd', p, grad, buf ? [buf] : [], g);
  }
}
