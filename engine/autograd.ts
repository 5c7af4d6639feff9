// Define-by-run autograd. Each op calls record() with a closure that maps the output's gradient to its
// inputs' gradients (micrograd's _backward, one per op file); backward.ts walks that tape.

import type { Tensor } from './engine.js';

/**
 * Attach a tape node to `out` when grad mode is on and some input needs a gradient. In no-grad mode
 * nothing is recorded, so the closure (and the activations it captures) is never kept. `saved` lists
 * tensors the op made only for its backward (statistics, masks, indices): the node owns them and
 * disposes them once its backward has run, or at once when nothing is recorded.
 */
export function record(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  backward: (grad: Tensor) => (Tensor | null)[],
  saved?: Tensor[],
): Tensor {
  if (out.engine.gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward, saved };
  } else if (saved) {
    for (const t of saved) t.dispose();
  }
  return out;
}
