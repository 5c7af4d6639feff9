// The frozen backbone an evaluation runs: loaded from a checkpoint (ours store the student backbone
// under `backbone.`; a torchvision or DINO export has bare names), or randomly initialised for the
// random-init baseline.

import { readFile } from 'node:fs/promises';
import { Rng, type Engine } from '../../engine/index.js';
import { freeze, type Backbone, type BackboneArch } from '../../models/backbone.js';
import { backboneFromBytes, type BackboneBytesOptions, type LoadedBackbone } from './backbone-bytes.js';
import { resnet18, resnet34, resnet50 } from '../../models/resnet.js';
import { vitBase, vitSmall, vitTiny } from '../../models/vit.js';

export { backboneFromBytes, type BackboneBytesOptions, type LoadedBackbone } from './backbone-bytes.js';

/** Where to load a backbone from (a checkpoint or weight file) and how. */
export interface LoadBackboneOptions extends BackboneBytesOptions {
  checkpoint: string;
}

/** A frozen backbone from a training checkpoint or a safetensors weight file. */
export async function loadBackbone(engine: Engine, opts: LoadBackboneOptions): Promise<LoadedBackbone> {
  const path = opts.checkpoint;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`checkpoint ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check --checkpoint`);
  }
  return backboneFromBytes(engine, bytes, path, opts);
}

/** A randomly initialised backbone: architecture, channels, seed. */
export interface RandomBackboneOptions {
  inChannels: number;
  /** ResNet: 3×3 stride-1 stem without max-pool (28-32 px images). */
  smallImage?: boolean;
  /** ResNet stage widths (default torchvision's). */
  widths?: readonly number[];
  /** ViT patch size and image size. */
  patchSize?: 16 | 8 | 4;
  imgSize?: number;
}

/** A randomly initialised backbone (the random-init baseline), in eval mode and frozen. */
export function randomBackbone(engine: Engine, arch: BackboneArch, opts: RandomBackboneOptions, seed: number): Backbone {
  const rng = new Rng(seed);
  let backbone: Backbone;
  if (arch.startsWith('resnet')) {
    const build = { resnet18, resnet34, resnet50 }[arch as 'resnet18' | 'resnet34' | 'resnet50'];
    const module = build(engine, { inChannels: opts.inChannels, smallImage: opts.smallImage, widths: opts.widths, numClasses: 0 }, rng);
    backbone = { module, features: (x) => module.forward(x), featureDim: module.featureDim, inChannels: opts.inChannels };
  } else {
    const build = { vit_tiny: vitTiny, vit_small: vitSmall, vit_base: vitBase }[arch as 'vit_tiny' | 'vit_small' | 'vit_base'];
    const patchSize = opts.patchSize ?? 16;
    const module = build(engine, { patchSize, imgSize: opts.imgSize ?? 224, inChannels: opts.inChannels }, rng);
    backbone = { module, features: (x) => module.forward(x), featureDim: module.featureDim, inChannels: opts.inChannels };
  }
  backbone.module.eval();
  freeze(backbone.module);
  return backbone;
}
