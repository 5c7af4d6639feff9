// A backbone rebuilt from a state dict: the architecture name says which family and size, the tensor
// shapes say the rest (input channels, small-image stem, widths, patch size, training resolution),
// so a torchvision or DINO export loads without a matching config file.

import { nn, Rng, type Engine, type Tensor } from '../engine/index.js';
import { resnet18, resnet34, resnet50, type ResNet } from './resnet.js';
import { vitBase, vitSmall, vitTiny, type VisionTransformer } from './vit.js';

/** Backbone architectures by name. */
export const BACKBONE_ARCHS = ['resnet18', 'resnet34', 'resnet50', 'vit_tiny', 'vit_small', 'vit_base'] as const;
/** A backbone architecture's name. */
export type BackboneArch = (typeof BACKBONE_ARCHS)[number];

/** A backbone for evaluation: its module, eval-mode features and their width. */
export interface Backbone {
  module: ResNet | VisionTransformer;
  /** Eval-mode features: globally average-pooled activations (ResNet) or the CLS token (ViT). */
  features: (x: Tensor) => Tensor;
  featureDim: number;
  inChannels: number;
}

/** Names that belong to the backbone: classifier heads (`fc.*`, `head.*`) are dropped. */
export function isBackboneTensor(arch: BackboneArch, name: string): boolean {
  return arch.startsWith('resnet') ? !name.startsWith('fc.') : !name.startsWith('head.');
}

function shapeOf(shapes: Map<string, readonly number[]>, name: string, arch: string): readonly number[] {
  const s = shapes.get(name);
  if (!s) throw new Error(`${arch}: the weights have no tensor '${name}' (is this a ${arch} state dict? a different --prefix?)`);
  return s;
}

/** Build the backbone whose parameters have these shapes (names as torchvision / DINO). */
export function backboneFromShapes(engine: Engine, arch: BackboneArch, shapes: Map<string, readonly number[]>): Backbone {
  const rng = new Rng(0); // every parameter is overwritten by the loaded weights
  if (arch.startsWith('resnet')) {
    const conv1 = shapeOf(shapes, 'conv1.weight', arch);
    const widths = [1, 2, 3, 4].map((s) => shapeOf(shapes, `layer${s}.0.conv1.weight`, arch)[0]);
    const build = { resnet18, resnet34, resnet50 }[arch as 'resnet18' | 'resnet34' | 'resnet50'];
    const module = build(engine, { inChannels: conv1[1], smallImage: conv1[2] === 3, widths, numClasses: 0 }, rng);
    return { module, features: (x) => module.forward(x), featureDim: module.featureDim, inChannels: conv1[1] };
  }
  const proj = shapeOf(shapes, 'patch_embed.proj.weight', arch);
  const pos = shapeOf(shapes, 'pos_embed', arch);
  const patch = proj[2];
  if (patch !== 16 && patch !== 8 && patch !== 4) throw new Error(`${arch}: patch size ${patch} is not 16, 8 or 4`);
  const grid = Math.round(Math.sqrt(pos[1] - 1));
  const build = { vit_tiny: vitTiny, vit_small: vitSmall, vit_base: vitBase }[arch as 'vit_tiny' | 'vit_small' | 'vit_base'];
  const module = build(
    engine,
    { patchSize: patch, imgSize: grid * patch, inChannels: proj[1], maskedImModeling: shapes.has('masked_embed') },
    rng,
  );
  if (module.featureDim !== proj[0]) {
    throw new Error(`${arch}: embed dim ${module.featureDim} does not match the weights' ${proj[0]} (another ViT size?)`);
  }
  return { module, features: (x) => module.forward(x), featureDim: module.featureDim, inChannels: proj[1] };
}

/** An architecture name (resnet18, vit-small, ...) checked and normalised. */
export function parseArch(name: string): BackboneArch {
  const a = name.replace('-', '_').toLowerCase();
  if (!(BACKBONE_ARCHS as readonly string[]).includes(a)) {
    throw new Error(`unknown --arch '${name}': expected one of ${BACKBONE_ARCHS.join(', ')}`);
  }
  return a as BackboneArch;
}

/** Keep a module's parameters out of the tape (features only). */
export function freeze(module: nn.Module): void {
  for (const p of module.parameters()) p.requiresGrad = false;
}
