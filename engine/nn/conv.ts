// nn.Conv2d: NCHW, square kernel, dilation 1, groups 1 (what ResNets and patch embeddings use).

import type { Engine, Tensor } from '../engine.js';
import type { Rng } from '../rng.js';
import { conv2d } from '../ops/conv.js';
import { Module } from './module.js';

/** Shape and options of a Conv2d layer. */
export interface Conv2dConfig {
  stride?: number;
  padding?: number;
  /** PyTorch's default is a bias; convolutions followed by batch norm turn it off. */
  bias?: boolean;
  /**
   * The weight's initialisation: PyTorch's default, or torchvision's ResNet re-init
   * kaiming_normal_(mode='fan_out', nonlinearity='relu'), N(0, 2/(out·k²)). Drawn instead of the
   * default rather than over it: a second pass over a ResNet-50's 23M weights costs seconds on the CPU.
   */
  init?: 'default' | 'kaimingNormalFanOut';
}

/** 2-D convolution layer with PyTorch's parameter names (weight [out, in/groups, kh, kw], optional bias). */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;

  /**
   * PyTorch's initialisation (unless opts.init says otherwise): kaiming_uniform_(a=√5) is
   * U(±1/√fanIn) for the weight, fanIn = inC·k², and the bias is U(±1/√fanIn) too. Draws come from
   * `rng`, weight first, then bias.
   */
  constructor(
    engine: Engine,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dConfig,
    rng: Rng,
  ) {
    super();
    const sizes = [inChannels, outChannels, kernelSize];
    if (!sizes.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new Error(`Conv2d: channels and kernel size must be positive integers, got in ${inChannels}, out ${outChannels}, kernel ${kernelSize}`);
    }
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const bound = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    const weight =
      opts.init === 'kaimingNormalFanOut'
        ? engine.randn(shape, rng, Math.sqrt(2 / (outChannels * kernelSize * kernelSize)))
        : engine.rand(shape, rng, -bound, bound);
    this.weight = this.registerParameter('weight', weight);
    this.bias = opts.bias === false ? null : this.registerParameter('bias', engine.rand([outChannels], rng, -bound, bound));
  }

  /** x [B, C_in, H, W] → [B, C_out, H', W']. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}
