// Features of a whole split for the evaluators: the frozen backbone in eval mode on every image
// (scaled to [0, 1], normalised by the dataset's mean/std; images of mixed sizes resized and
// centre-cropped on the CPU), or the normalised pixels themselves (the raw-pixel baseline). The
// features stay on the GPU as row blocks (hvp/eval/rows.ts); they belong to the caller's scope.

import { ops, type Engine, type Tensor } from '../../engine/index.js';
import type { Backbone } from '../../models/backbone.js';
import type { Dataset, Image } from '../data/types.js';
import { Progress } from '../progress.js';
import { resizeCenterCrop } from './resize.js';
import { blockRows, rowRange } from './rows.js';

/** Batching, input size and normalisation of feature extraction. */
export interface ExtractOptions {
  /** Images per forward (default 128). */
  batch?: number;
  /** Square input size after resize + centre crop: for datasets of mixed sizes (default 224); for
   *  fixed-size data, a size other than the images' own resizes and crops them too. */
  size?: number;
  /** Label of a progress bar on stderr (none when absent). */
  progress?: string;
  /** Per-channel statistics to normalise by instead of the dataset's own (e.g. the train split's for the test split). */
  normalize?: Stats;
  /** Rows per GPU block (default: BLOCK_BYTES worth). */
  blockRows?: number;
}

/** Per-channel mean and standard deviation. */
export interface Stats {
  mean: readonly number[];
  std: readonly number[];
}

/** How images become network input: their own size, or resize + centre crop to `crop`. */
interface Prep {
  channels: number;
  height: number;
  width: number;
  crop: number | null;
  scale: Float32Array;
  shift: Float32Array;
}

function prepFor(ds: Dataset, size?: number, stats: Stats = ds): Prep {
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) throw new Error(`extractFeatures: size must be a positive integer, got ${size}`);
  const fixed = ds.size;
  const keep = fixed && (size === undefined || (fixed[0] === size && fixed[1] === size));
  const crop = keep ? null : (size ?? 224);
  const [height, width] = keep ? fixed : [crop!, crop!];
  // (p / 255 - mean) / std = p · scale + shift, per channel.
  if (stats.mean.length !== ds.channels || stats.std.length !== ds.channels) {
    throw new Error(`${ds.name}: normalisation statistics for ${stats.mean.length} channels, the images have ${ds.channels}`);
  }
  const scale = Float32Array.from(stats.std, (s) => 1 / (255 * s));
  const shift = Float32Array.from(stats.mean, (m, c) => -m / stats.std[c]);
  return { channels: ds.channels, height, width, crop, scale, shift };
}

function writeImage(img: Image, p: Prep, out: Float32Array, at: number, ds: Dataset, index: number): void {
  const plane = p.height * p.width;
  if (p.crop === null) {
    if (img.height !== p.height || img.width !== p.width || img.pixels.length !== p.channels * plane) {
      throw new Error(`${ds.name}: image ${index} is ${img.height}×${img.width}×${img.pixels.length / (img.height * img.width)}, not the dataset's ${p.height}×${p.width}×${p.channels}`);
    }
  }
  const src = p.crop === null ? img.pixels : resizeCenterCrop(img, p.channels, p.crop);
  for (let c = 0; c < p.channels; c++) {
    const s = p.scale[c];
    const t = p.shift[c];
    for (let i = 0; i < plane; i++) out[at + c * plane + i] = src[c * plane + i] * s + t;
  }
}

/** Images start .. start + n - 1, normalised, as one [n, C, H, W] array. */
async function readBatch(ds: Dataset, p: Prep, start: number, n: number): Promise<Float32Array> {
  const per = p.channels * p.height * p.width;
  const out = new Float32Array(n * per);
  const images = await Promise.all(Array.from({ length: n }, (_, i) => ds.read(start + i)));
  images.forEach((img, i) => writeImage(img, p, out, i * per, ds, start + i));
  return out;
}

/** Empty row blocks for `rows` features of width `dim`. */
function allocate(engine: Engine, rows: number, dim: number, per = blockRows(dim)): Tensor[] {
  const out: Tensor[] = [];
  for (let s = 0; s < rows; s += per) out.push(engine.empty([Math.min(per, rows - s), dim]));
  return out;
}

/** Copy `src` [n, F] into rows start .. start + n - 1 of the blocks. */
function writeRows(blocks: Tensor[], start: number, src: Tensor): void {
  let at = 0;
  for (const dst of rowRange(blocks, start, start + src.shape[0])) {
    const part = ops.slice(src, 0, at, at + dst.shape[0]);
    ops.copyInto(dst, part);
    at += dst.shape[0];
    part.dispose();
    dst.dispose();
  }
}

/**
 * Run `batches` over the dataset: the next batch is read (and decoded) while the GPU works on the
 * current one.
 */
async function overDataset(
  engine: Engine,
  ds: Dataset,
  p: Prep,
  batch: number,
  label: string | undefined,
  fn: (x: Tensor, start: number) => void,
): Promise<void> {
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`extractFeatures: batch must be a positive integer, got ${batch}`);
  const progress = label ? new Progress(label, ds.length, 'image') : null;
  const read = (s: number) => readBatch(ds, p, s, Math.min(batch, ds.length - s));
  let next = ds.length > 0 ? read(0) : null;
  for (let s = 0; s < ds.length; s += batch) {
    const data = await next!;
    next = s + batch < ds.length ? read(s + batch) : null;
    const n = data.length / (p.channels * p.height * p.width);
    engine.scope(() => engine.noGrad(() => fn(engine.tensor(data, [n, p.channels, p.height, p.width]), s)));
    await engine.sync();
    progress?.update(s + n);
  }
  progress?.done();
}

/** Backbone features [N, F] of every image of `ds`, as row blocks. */
export async function extractFeatures(engine: Engine, backbone: Backbone, ds: Dataset, opts: ExtractOptions = {}): Promise<Tensor[]> {
  if (ds.channels !== backbone.inChannels) {
    throw new Error(`${ds.name} has ${ds.channels}-channel images but the backbone takes ${backbone.inChannels} channels (another dataset or checkpoint?)`);
  }
  const p = prepFor(ds, opts.size, opts.normalize);
  const out = allocate(engine, ds.length, backbone.featureDim, opts.blockRows);
  // Evaluation in the middle of training (a k-NN monitor) must hand the model back in its own mode.
  const wasTraining = backbone.module.training;
  try {
    backbone.module.eval();
    await overDataset(engine, ds, p, opts.batch ?? 128, opts.progress, (x, start) => writeRows(out, start, backbone.features(x)));
  } catch (e) {
    for (const t of out) t.dispose();
    throw e;
  } finally {
    backbone.module.train(wasTraining);
  }
  return out;
}

/** The normalised pixels [N, C·H·W] of every image (the raw-pixel baseline), as row blocks. */
export async function rawPixelFeatures(
  engine: Engine,
  ds: Dataset,
  opts: Pick<ExtractOptions, 'progress' | 'normalize' | 'blockRows'> = {},
): Promise<Tensor[]> {
  if (!ds.size) throw new Error(`rawPixelFeatures: ${ds.name} has images of mixed sizes; raw pixels need one size`);
  const p = prepFor(ds, undefined, opts.normalize);
  const dim = p.channels * p.height * p.width;
  const out = allocate(engine, ds.length, dim, opts.blockRows);
  try {
    await overDataset(engine, ds, p, 1024, opts.progress, (x, start) => writeRows(out, start, ops.reshape(x, [x.shape[0], dim])));
  } catch (e) {
    for (const t of out) t.dispose();
    throw e;
  }
  return out;
}
