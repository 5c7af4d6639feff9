// LARS (You et al. 2017) as DINO's and the reference pretrain code's utils.LARS define it: SGD with
// momentum whose update of each weight tensor is scaled by its trust ratio
//   d = g + wd·w,  q = eta·‖w‖ / ‖d‖ (1 when ‖w‖ or ‖d‖ is 0),  mu = μ·mu + q·d,  w -= lr·mu.
// One-dimensional parameters (biases, batch-norm and layer-norm weights) get neither weight decay nor
// the trust ratio: mu = μ·mu + g, w -= lr·mu (the reference's `p.ndim != 1` rule). Note the ratio's
// denominator is the norm of the decayed update ‖g + wd·w‖, not ‖g‖ + wd·‖w‖ as in the paper.
// Per weight tensor three dispatches, none read back: the two norms in partial sums, the ratio, the update.

import type { Tensor } from '../engine.js';
import { defineKernel } from '../kernel.js';
import { dispatchUpdate } from './update.js';
import { Optimizer, type GroupHyper, type GroupSpec, type ParamState } from './optimizer.js';
import source from './lars-trust.wgsl';

export interface LARSHyper extends GroupHyper {
  momentum: number;
  /** Trust coefficient. */
  eta: number;
}

const WG = 256;
/** Elements one workgroup sums before another is worth launching (16 per thread). */
const PER_WORKGROUP = WG * 16;
/** Cap on workgroups per parameter: beyond it the grid-stride loop makes each thread sum more. */
const MAX_SLOTS = 256;

const partialKernel = defineKernel({
  name: 'lars_trust_partial',
  source,
  workgroupSize: WG,
  uniforms: { n: 'u32', weight_decay: 'f32' },
  inputs: { param: 'f32', grad: 'f32' },
  outputs: { partial: 'f32' },
  defines: { PARTIAL: true },
});
const ratioKernel = defineKernel({
  name: 'lars_trust',
  source,
  workgroupSize: WG,
  uniforms: { slots: 'u32', eta: 'f32' },
  inputs: { partial: 'f32' },
  outputs: { trust: 'f32' },
  defines: { PARTIAL: false },
});

/** Whether LARS leaves `p` out of weight decay and the trust ratio (biases and norm parameters). */
export function larsExcluded(p: Tensor): boolean {
  return p.ndim === 1;
}

export class LARS extends Optimizer<LARSHyper> {
  constructor(params: Tensor[] | GroupSpec<LARSHyper>[], opts: Partial<LARSHyper> & { lr: number }) {
    // The reference's defaults: momentum 0.9, eta 0.001, no weight decay.
    super('LARS', params, { momentum: 0.9, eta: 0.001, weightDecay: 0, ...opts });
  }

  protected stateNames(): string[] {
    return ['momentumBuffer'];
  }

  protected validate(g: LARSHyper): void {
    if (!(g.lr >= 0) || !(g.momentum >= 0) || !(g.weightDecay >= 0) || !(g.eta > 0)) {
      throw new Error(`LARS: invalid lr ${g.lr}, momentum ${g.momentum}, weight decay ${g.weightDecay} or eta ${g.eta}`);
    }
  }

  protected update(p: Tensor, grad: Tensor, st: ParamState, g: LARSHyper): void {
    const buf = st.buffers.momentumBuffer;
    if (larsExcluded(p)) return dispatchUpdate('sgd_momentum', p, grad, [buf], { lr: g.lr, weightDecay: 0, momentum: g.momentum });
    const slots = Math.min(Math.max(Math.ceil(p.size / PER_WORKGROUP), 1), MAX_SLOTS);
    const partial = p.engine.empty([2 * slots]);
    partialKernel.launch({
      inputs: [p, grad],
      outputs: [partial],
      uniforms: { n: p.size, weight_decay: g.weightDecay },
      workgroups: [slots],
    });
    const trust = p.engine.empty([1]);
    ratioKernel.launch({ inputs: [partial], outputs: [trust], uniforms: { slots, eta: g.eta }, workgroups: [1] });
    partial.dispose();
    dispatchUpdate('lars', p, grad, [buf], { lr: g.lr, weightDecay: g.weightDecay, momentum: g.momentum }, 0, trust);
    trust.dispose();
  }
}
