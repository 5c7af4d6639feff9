// The frozen backbone an evaluation runs: loaded from a checkpoint (ours store the student backbone
// under `backbone.`; a torchvision or DINO export has bare names), or randomly initialised for the
// random-init baseline.

import { readFile } from 'node:fs/promises';
import { Rng, io, type Engine } from '../../engine/index.js';
import { backboneFromShapes, freeze, isBackboneTensor, parseArch, type Backbone, type BackboneArch } from '../../models/backbone.js';
import { verifyChecksum } from '../../models/checkpoint.js';
import { resnet18, resnet34, resnet50 } from '../../models/resnet.js';
import { vitBase, vitSmall, vitTiny } from '../../models/vit.js';

export interface LoadBackboneOptions {
  checkpoint: string;
  /** Use only tensors named `prefix<name>`; default `backbone.` when the file has such names, else none. */
  prefix?: string;
  /** Overrides the checkpoint's `arch` metadata; required for files without it. */
  arch?: string;
}

export interface LoadedBackbone {
  backbone: Backbone;
  arch: BackboneArch;
  prefix: string;
  /** The file's string metadata (method, epoch, ... for our checkpoints). */
  metadata: Record<string, string>;
}

const DEFAULT_PREFIX = 'backbone.';

export async function loadBackbone(engine: Engine, opts: LoadBackboneOptions): Promise<LoadedBackbone> {
  const path = opts.checkpoint;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`checkpoint ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check --checkpoint`);
  }
  const header = io.readSafetensorsHeader(bytes, bytes.length, path);
  verifyChecksum(bytes, header, path, false);
  const archName = opts.arch ?? header.metadata.arch;
  if (!archName) throw new Error(`${path} records no architecture in its metadata: pass --arch`);
  const arch = parseArch(archName.replace(/\/.*$/, '')); // ViT names may carry the patch size ('vit_small/16')
  const { tensors } = io.readSafetensors(bytes, { source: path });
  const names = [...tensors.keys()];
  const prefix = opts.prefix ?? (names.some((n) => n.startsWith(DEFAULT_PREFIX)) ? DEFAULT_PREFIX : '');
  const selected = new Map(
    [...tensors]
      .filter(([n]) => n.startsWith(prefix))
      .map(([n, t]) => [n.slice(prefix.length), t] as const)
      .filter(([n]) => !n.startsWith('optimizer.') && isBackboneTensor(arch, n)),
  );
  if (selected.size === 0) {
    const seen = [...new Set(names.map((n) => n.split('.')[0] + '.'))].slice(0, 8).join(', ');
    throw new Error(`${path}: no backbone tensors under the prefix '${prefix}' (top-level names: ${seen}): pass --prefix`);
  }
  const backbone = backboneFromShapes(engine, arch, new Map([...selected].map(([n, t]) => [n, t.shape])));
  io.loadTensorsInto(backbone.module, selected, { strict: true, source: path });
  backbone.module.eval();
  freeze(backbone.module);
  return { backbone, arch, prefix, metadata: header.metadata };
}

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
