// nn.LayerNorm over the last axis (normalized_shape = [D]), with PyTorch's names (`weight`, `bias`)
// and init (ones, zeros), on ops.layerNorm.

import type { Engine, Tensor } from '../engine.js';
import { layerNorm } from '../ops/layer-norm.js';
import { Module } from './module.js';

/** Options of a LayerNorm layer. */
export interface LayerNormConfig {
  /** PyTorch's default is 1e-5; DINO's and timm's ViTs use 1e-6. */
  eps?: number;
  /** Learnable per-feature scale and shift. */
  elementwiseAffine?: boolean;
}

/** Layer normalisation over the last dimension, with affine weight and bias. */
export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(engine: Engine, readonly normalizedShape: number, opts: LayerNormConfig = {}) {
    super();
    if (!Number.isInteger(normalizedShape) || normalizedShape < 1) {
      throw new Error(`LayerNorm: normalizedShape must be a positive integer, got ${normalizedShape}`);
    }
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? this.registerParameter('weight', engine.ones([normalizedShape])) : null;
    this.bias = affine ? this.registerParameter('bias', engine.zeros([normalizedShape])) : null;
  }

  /** Normalise x over its last dimension. */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
