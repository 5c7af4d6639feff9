// Building blocks of the heads (models/heads.ts): a Sequential container that names its layers by
// position as torch.nn.Sequential does (so activations leave gaps: `0`, `1`, `3`, ...), a
// weight-normalised Linear with PyTorch's `weight_g`/`weight_v`, and DINO's Linear init.

import type { Engine, Rng, Tensor } from '../engine/index.js';
import { nn } from '../engine/index.js';
import { copyInto, div, linear, mul, sqrt, sum } from '../engine/ops/index.js';

export { Sequential, type Layer } from '../engine/nn/index.js';

/** DINO's init for its head's Linear layers: trunc_normal_(std=0.02) (cut at ±2, i.e. never) and zero bias. */
export function dinoLinear(engine: Engine, inF: number, outF: number, rng: Rng): nn.Linear {
  const l = new nn.Linear(engine, inF, outF, rng);
  engine.scope(() => {
    copyInto(l.weight, engine.randn([outF, inF], rng, 0.02));
    copyInto(l.bias!, engine.zeros([outF]));
  });
  return l;
}

/**
 * nn.utils.weight_norm(nn.Linear(in, out, bias=False)): weight = g · v / ‖v‖ with the norm over each
 * output row, g [out, 1] and v [out, in]. v gets Linear's default init and g starts at 1 (DINO fills
 * it with 1 after weight_norm set it to ‖v‖); a frozen g (DINO's norm_last_layer) keeps every row of
 * the weight at unit norm.
 */
export class WeightNormLinear extends nn.Module {
  readonly weight_g: Tensor;
  readonly weight_v: Tensor;

  constructor(engine: Engine, inF: number, outF: number, rng: Rng, opts: { freezeNorm?: boolean } = {}) {
    super();
    const bound = 1 / Math.sqrt(inF);
    this.weight_g = this.registerParameter('weight_g', engine.ones([outF, 1]));
    this.weight_v = this.registerParameter('weight_v', engine.rand([outF, inF], rng, -bound, bound));
    this.weight_g.requiresGrad = !opts.freezeNorm;
  }

  /** The effective weight. No ε on the norm, as in PyTorch's _weight_norm. */
  weight(): Tensor {
    const v = this.weight_v;
    return mul(v, div(this.weight_g, sqrt(sum(mul(v, v), 1, true))));
  }

  /** x [B, in] → [B, out] with the weight normalised per output row. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight());
  }
}
