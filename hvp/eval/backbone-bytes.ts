// A frozen backbone from safetensors bytes in memory, with no file access (the browser explorer loads
// picked files through it): ours store the student backbone under `backbone.`; a torchvision or DINO
// export has bare names.

import { io, type Engine } from '../../engine/index.js';
import { backboneFromShapes, freeze, isBackboneTensor, parseArch, type Backbone, type BackboneArch } from '../../models/backbone.js';
import { verifyChecksum } from '../../models/checkpoint-bytes.js';

/** How to read a backbone from checkpoint or weight bytes. */
export interface BackboneBytesOptions {
  /** Use only tensors named `prefix<name>`; default `backbone.` when the file has such names, else none. */
  prefix?: string;
  /** Overrides the checkpoint's `arch` metadata; required for files without it. */
  arch?: string;
}

/** A backbone loaded for evaluation, with its architecture, the tensor-name prefix it was read from and the file's metadata. */
export interface LoadedBackbone {
  backbone: Backbone;
  arch: BackboneArch;
  prefix: string;
  /** The file's string metadata (method, epoch, ... for our checkpoints). */
  metadata: Record<string, string>;
}

const DEFAULT_PREFIX = 'backbone.';

/** A frozen backbone from safetensors bytes: an hvp checkpoint (`backbone.*`) or a torchvision/DINO export (bare names). */
export async function backboneFromBytes(engine: Engine, bytes: Uint8Array, path: string, opts: BackboneBytesOptions = {}): Promise<LoadedBackbone> {
  const header = io.readSafetensorsHeader(bytes, bytes.length, path);
  await verifyChecksum(bytes, header, path, false);
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
