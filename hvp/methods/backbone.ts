// The student backbone of a pretraining run, built from the configuration, with the two features
// HVP asks of it: pooled features of the whole network, and of an early stage for the cheaper
// intermediate-layer selection (docs/method.md §1: globally average-pooled activations, early exit).

import { ops, type Engine, type Rng, type Tensor } from '../../engine/index.js';
import { resnet18, resnet34, resnet50, vitBase, vitSmall, vitTiny, RESNET_STAGES, type ResNet, type ResNetStage, type VisionTransformer } from '../../models/index.js';
import type { TrainConfig } from '../train/config.js';

/** The backbone a method trains, with its pooled features and intermediate-layer features. */
export interface StudentBackbone {
  module: ResNet | VisionTransformer;
  featureDim: number;
  /** Pooled features; `rng` draws ViT drop-path seeds in training. */
  forward(x: Tensor, rng?: Rng): Tensor;
  /** Pooled [B, F] features at `layer` ('stem', 'layer1'.. for ResNets, a block index for ViTs). */
  pooledAt(x: Tensor, layer: string): Tensor;
}

/** The student backbone a training configuration names. */
export function buildBackbone(engine: Engine, c: TrainConfig, channels: number, rng: Rng): StudentBackbone {
  if (c.arch.startsWith('resnet')) {
    const build = { resnet18, resnet34, resnet50 }[c.arch as 'resnet18' | 'resnet34' | 'resnet50'];
    const widths = c.widths.length ? c.widths : undefined;
    if (widths && widths.length !== 4) throw new Error(`--widths needs the 4 stage widths of a ResNet, got ${widths.join(',')}`);
    const module = build(engine, { inChannels: channels, smallImage: c.smallImage, widths, numClasses: 0, zeroInitResidual: c.zeroInitResidual }, rng);
    return {
      module,
      featureDim: module.featureDim,
      forward: (x) => module.forward(x),
      pooledAt: (x, layer) => {
        if (!(RESNET_STAGES as readonly string[]).includes(layer)) {
          throw new Error(`--select-layer for a ResNet is one of ${RESNET_STAGES.join(', ')}, got '${layer}'`);
        }
        const h = module.forwardFeatures(x, { upTo: layer as ResNetStage });
        const pooled = ops.globalAvgPool(h);
        h.dispose();
        return pooled;
      },
    };
  }
  const build = { vit_tiny: vitTiny, vit_small: vitSmall, vit_base: vitBase }[c.arch as 'vit_tiny' | 'vit_small' | 'vit_base'];
  const module = build(
    engine,
    { patchSize: c.patchSize as 4 | 8 | 16, imgSize: c.size, inChannels: channels, dropPathRate: c.dropPathRate, maskedImModeling: c.method === 'ibot' },
    rng,
  );
  return {
    module,
    featureDim: module.featureDim,
    forward: (x, r) => module.forward(x, { rng: r }),
    pooledAt: (x, layer) => {
      const block = Number(layer);
      if (!Number.isInteger(block)) throw new Error(`--select-layer for a ViT is a block index, got '${layer}'`);
      return module.forwardFeatures(x, { upTo: block });
    },
  };
}
