// torch.nn.Sequential, and the chaining rule both it and hand-written forwards use.

import type { Tensor } from '../engine.js';
import { Module } from './module.js';

/** A module with a forward over one tensor. */
export interface Layer extends Module {
  /** The layer's output for x. */
  forward(x: Tensor): Tensor;
}

/** One step of a Sequential: a function from tensor to tensor. */
export type Step = (x: Tensor) => Tensor;

/**
 * x → steps[0] → steps[1] → ...; an intermediate that no tape node holds is freed as soon as the
 * next one exists, so a forward without gradients (HVP's selection forward over every view) keeps a
 * few activations alive instead of all of them. The input itself belongs to the caller.
 */
export function chain(x: Tensor, steps: Step[]): Tensor {
  let h = x;
  for (const step of steps) {
    const next = step(h);
    if (h !== x && next !== h && !next.requiresGrad) h.dispose();
    h = next;
  }
  return h;
}

/**
 * Modules are registered under their position, as torch.nn.Sequential names them; plain functions
 * (activations without parameters) take a position too, so names leave the same gaps as PyTorch's
 * (`0`, `1`, `3`, ... when `2` is a ReLU).
 */
export class Sequential extends Module {
  constructor(readonly layers: (Layer | Step)[]) {
    super();
    layers.forEach((l, i) => {
      if (l instanceof Module) this.registerModule(String(i), l);
    });
  }

  /** Run the layers in order. */
  forward(x: Tensor): Tensor {
    return chain(x, this.layers.map((l) => (l instanceof Module ? (t: Tensor) => l.forward(t) : l)));
  }
}
