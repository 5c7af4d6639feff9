// Folders of JPEG/PNG files in the ImageNet layout, `root/<class>/<image>`, decoded on demand (JPEGs
// by the loader's own decoder where it is built, the rest by sharp) in worker threads
// (decode-pool.ts), so reads issued by the loader overlap each other and the GPU work of the step in
// flight, and the main thread only receives finished CHW pixels. Nothing is cached: an epoch of
// ImageNet does not fit in memory, and `loadSize` bounds what one decoded image costs.

import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { decodeWith, type Decoded } from './decode.js';
import { loadJpegDecoder } from './jpeg-addon.js';
import { DecodePool, sharedDecodePool } from './decode-pool.js';
import { checkIndex, type Split } from './idx.js';
import type { Dataset, Image } from './types.js';

/** ImageNet's per-channel mean (RGB, 0-1). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
/** ImageNet's per-channel standard deviation (RGB, 0-1). */
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
/** File extensions an image folder reads. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'] as const;

/** Load size and normalisation statistics of an image folder. */
export interface ImageFolderOptions {
  /** Resize so that the shorter side is this many pixels (e.g. 256 for 224 crops); keeps memory bounded. */
  loadSize?: number;
  mean?: readonly number[];
  std?: readonly number[];
  /**
   * Worker threads that decode (default: the process's shared pool, one per core); 0 decodes on the
   * calling thread. Every setting gives the same pixels.
   */
  threads?: number;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** `root/train` or `root/val` (`root/test` also accepted) when the root is split, else the root itself. */
export function folderSplitDir(root: string, split: Split): string {
  const named = split === 'train' ? ['train'] : ['val', 'test'];
  if (!['train', 'val', 'test'].some((d) => isDir(join(root, d)))) return root;
  const dir = named.map((d) => join(root, d)).find(isDir);
  if (!dir) throw new Error(`image folder ${root} is split but has no ${named.join(' or ')} directory for the ${split} split`);
  return dir;
}

/** Classes (sorted subdirectory names, as torchvision's ImageFolder) and every image file with its label. */
export async function listImageFolder(dir: string): Promise<{ classes: string[]; files: string[]; labels: Int32Array }> {
  const entries = await readdir(dir, { withFileTypes: true });
  const classes = entries
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && isDir(join(dir, e.name)))))
    .map((e) => e.name)
    .sort();
  const files: string[] = [];
  const labels: number[] = [];
  for (const [label, name] of classes.entries()) {
    const images = (await readdir(join(dir, name)))
      .filter((f) => !f.startsWith('.') && (IMAGE_EXTENSIONS as readonly string[]).includes(extname(f).toLowerCase()))
      .sort();
    for (const f of images) {
      files.push(join(dir, name, f));
      labels.push(label);
    }
  }
  return { classes, files, labels: Int32Array.from(labels) };
}

/** Decode one file to uint8 RGB, channel-major, on this thread (see decodeWith). */
export function decodeImage(path: string, loadSize?: number): Promise<Decoded> {
  return decodeWith(sharp, path, loadSize, loadJpegDecoder());
}

/** Class folders of images (<class>/<image>), labelled as torchvision's ImageFolder labels them. */
export class ImageFolder implements Dataset {
  readonly channels = 3;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly loadSize?: number;
  readonly threads?: number;
  private pool: DecodePool | null = null;

  constructor(
    readonly name: string,
    readonly classes: readonly string[],
    readonly files: readonly string[],
    readonly labels: Int32Array,
    options: ImageFolderOptions = {},
  ) {
    this.loadSize = options.loadSize;
    this.threads = options.threads;
    this.mean = options.mean ?? IMAGENET_MEAN;
    this.std = options.std ?? IMAGENET_STD;
  }

  get length(): number {
    return this.files.length;
  }

  async read(index: number): Promise<Image> {
    checkIndex(this, index);
    const path = this.files[index];
    const img = this.threads === 0 ? await decodeImage(path, this.loadSize) : await this.decodePool().decode(path, this.loadSize);
    return { ...img, label: this.labels[index] };
  }

  private decodePool(): DecodePool {
    if (this.threads === undefined) return sharedDecodePool();
    if (!this.pool || this.pool.isClosed) this.pool = new DecodePool(this.threads);
    return this.pool;
  }
}

/** Open `split` of the image folder at `root`. */
export async function openImageFolder(root: string, split: Split, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  if (options.loadSize !== undefined && !(Number.isInteger(options.loadSize) && options.loadSize > 0)) {
    throw new Error(`image folder: loadSize must be a positive integer, got ${options.loadSize}`);
  }
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 0)) {
    throw new Error(`image folder: threads must be an integer >= 0, got ${options.threads}`);
  }
  const dir = folderSplitDir(root, split);
  const { classes, files, labels } = await listImageFolder(dir);
  if (classes.length === 0) throw new Error(`image folder ${dir}: no class subdirectories (expected ${dir}/<class>/<image>.jpg)`);
  if (files.length === 0) throw new Error(`image folder ${dir}: no ${IMAGE_EXTENSIONS.join('/')} files in its ${classes.length} class directories`);
  return new ImageFolder(`${basename(resolve(root))}/${split}`, classes, files, labels, options);
}
