// nn.Linear: y = x·Wᵀ + b with W of shape [out, in].

import type { Engine, Tensor } from '../engine.js';
import type { Rng } from '../rng.js';
import { linear } from '../ops/matmul.js';
import { Module } from './module.js';

/** Fully connected layer y = x·Wᵀ + b, PyTorch's parameter layout and initialisation. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  /**
   * PyTorch's initialisation: kaiming_uniform_(a=√5) gives U(±1/√in) for the weight, and the bias is
   * U(±1/√in) too. Draws come from `rng` (weight first, then bias) so runs are reproducible.
   */
  constructor(
    engine: Engine,
    readonly inFeatures: number,
    readonly outFeatures: number,
    rng: Rng,
    opts: { bias?: boolean } = {},
  ) {
    super();
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.weight = this.registerParameter('weight', engine.rand([outFeatures, inFeatures], rng, -bound, bound));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', engine.rand([outFeatures], rng, -bound, bound));
  }

  /** x [..., in] → [..., out]. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
