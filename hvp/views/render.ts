// Augmented views on the GPU. A batch of uint8 images is uploaded once (uploadBatch); renderViews
// turns per-view parameters (params.ts) into a normalised [n, C, size, size] tensor with one dispatch
// (shaders/views.wgsl), or three when some view is blurred (then shaders/views_blur.wgsl blurs
// horizontally and vertically, and its vertical pass solarises and normalises).

import type { Engine } from '../../engine/engine.js';
import type { Tensor } from '../../engine/tensor.js';
import { grid1d } from '../../engine/runtime.js';
import type { ImageBatch } from '../data/types.js';
import { blurKernelSize } from './pipelines.js';
import type { ViewParams } from './params.js';
import { gaussianKernel1d, type RenderOptions } from './reference.js';
import renderSource from '../../shaders/views.wgsl';
import blurSource from '../../shaders/views_blur.wgsl';

export type { RenderOptions } from './reference.js';

/** A batch of images resident on the GPU, the source every view of a step is rendered from. */
export interface UploadedBatch {
  readonly count: number;
  readonly channels: number;
  readonly heights: Uint32Array;
  readonly widths: Uint32Array;
  /** The uint8 CHW pixels of all images, four per 32-bit word (held in an i32 tensor). */
  readonly pixels: Tensor;
  /** Per image: byte offset into `pixels`, height, width. */
  readonly table: Tensor;
  dispose(): void;
}

/** Word offsets in a view record: the F_* constants of shaders/views.wgsl and views_blur.wgsl. */
const F = { crop: 0, flip: 4, jitter: 5, factors: 6, order: 10, gray: 11, solarize: 12, sigma: 13 } as const;
/** Words of a view record before the blur weights. */
const HEADER = 16;
/** Threads per workgroup and values per thread of shaders/views_blur.wgsl. */
const BLUR_WG = 64;
const BLUR_SPAN = 8;

function uploadWords(engine: Engine, words: Uint32Array): Tensor {
  const t = engine.empty([Math.max(words.length, 1)], 'i32');
  if (words.length) engine.backend.write(t.buffer, 0, words);
  return t;
}

export function uploadBatch(engine: Engine, batch: ImageBatch): UploadedBatch {
  const n = batch.offsets.length;
  const C = batch.channels;
  if (C !== 1 && C !== 3) throw new Error(`uploadBatch: channels must be 1 or 3, got ${C}`);
  if (n === 0) throw new Error('uploadBatch: the batch holds no images');
  if (batch.heights.length !== n || batch.widths.length !== n) {
    throw new Error(`uploadBatch: ${n} offsets but ${batch.heights.length} heights and ${batch.widths.length} widths`);
  }
  const table = new Uint32Array(3 * n);
  for (let b = 0; b < n; b++) {
    const [off, h, w] = [batch.offsets[b], batch.heights[b], batch.widths[b]];
    if (h === 0 || w === 0 || off + C * h * w > batch.pixels.length) {
      throw new Error(`uploadBatch: image ${b} (${C}x${h}x${w} at ${off}) does not fit ${batch.pixels.length} pixel bytes`);
    }
    table.set([off, h, w], 3 * b);
  }
  // Words are read little-endian in the shader, as typed arrays lay them out on every platform WebGPU runs on.
  const bytes = new Uint8Array(Math.ceil(batch.pixels.length / 4) * 4);
  bytes.set(batch.pixels);
  const pixels = uploadWords(engine, new Uint32Array(bytes.buffer));
  const tableT = uploadWords(engine, table);
  return {
    count: n,
    channels: C,
    heights: Uint32Array.from(batch.heights),
    widths: Uint32Array.from(batch.widths),
    pixels: engine.keep(pixels),
    table: engine.keep(tableT),
    dispose() {
      pixels.dispose();
      tableT.dispose();
    },
  };
}

/** One record per view: crop i j h w, flip, jitter on, 4 factors, order, gray, solarise, σ, pad, weights. */
function packViews(src: UploadedBatch, params: readonly ViewParams[], ksize: number): Uint32Array {
  const stride = HEADER + ksize;
  const words = new Uint32Array(params.length * stride);
  const floats = new Float32Array(words.buffer);
  params.forEach((p, v) => {
    const b = v % src.count;
    const { i, j, h, w } = p.crop;
    const ok = [i, j, h, w].every(Number.isInteger) && i >= 0 && j >= 0 && h >= 1 && w >= 1;
    if (!ok || i + h > src.heights[b] || j + w > src.widths[b]) {
      throw new Error(`renderViews: view ${v} crop (i ${i}, j ${j}, h ${h}, w ${w}) is outside image ${b} (${src.heights[b]}x${src.widths[b]})`);
    }
    const r = v * stride;
    words.set([i, j, h, w], r + F.crop);
    words[r + F.flip] = p.flip ? 1 : 0;
    if (p.jitter) {
      const jt = p.jitter;
      const sorted = [...jt.order].sort();
      if (jt.order.length !== 4 || sorted.some((o, k) => o !== k)) {
        throw new Error(`renderViews: view ${v} jitter order [${jt.order.join(', ')}] is not a permutation of 0..3`);
      }
      words[r + F.jitter] = 1;
      floats.set([jt.brightness, jt.contrast, jt.saturation, jt.hue], r + F.factors);
      words[r + F.order] = jt.order.reduce((acc, op, k) => acc | (op << (2 * k)), 0);
    }
    words[r + F.gray] = p.gray ? 1 : 0;
    words[r + F.solarize] = p.solarize ? 1 : 0;
    if (!(p.blurSigma >= 0 && Number.isFinite(p.blurSigma))) throw new Error(`renderViews: view ${v} blurSigma ${p.blurSigma} must be >= 0`);
    if (p.blurSigma > 0) {
      floats[r + F.sigma] = p.blurSigma;
      floats.set(gaussianKernel1d(ksize, p.blurSigma), r + HEADER);
    }
  });
  return words;
}

function checkOptions(src: UploadedBatch, params: readonly ViewParams[], opts: RenderOptions): void {
  const C = src.channels;
  if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`renderViews: size ${opts.size} must be a positive integer`);
  if (opts.mean.length !== C || opts.std.length !== C) {
    throw new Error(`renderViews: mean/std have ${opts.mean.length}/${opts.std.length} entries for ${C} channels`);
  }
  if (params.length === 0 || params.length % src.count !== 0) {
    throw new Error(`renderViews: ${params.length} view params are not a whole number of views of ${src.count} images`);
  }
  src.pixels.assertAlive('renderViews');
}

function uniforms(head: number[], opts: RenderOptions): Uint32Array {
  const u = new Uint32Array(16);
  const f = new Float32Array(u.buffer);
  u.set(head);
  f.set(opts.mean, 8);
  f.set(opts.std, 12);
  return u;
}

/**
 * Render views: entry v of `params` is a view of image v mod B (view-major: entry v·B + b is view v
 * of image b). Returns f32 [n, C, size, size], normalised by opts.mean/std.
 */
export function renderViews(engine: Engine, src: UploadedBatch, params: readonly ViewParams[], opts: RenderOptions): Tensor {
  checkOptions(src, params, opts);
  const { size } = opts;
  const C = src.channels;
  const n = params.length;
  const blur = params.some((p) => p.blurSigma > 0);
  const ksize = blur ? blurKernelSize(size) : 0;
  if (blur && (ksize - 1) / 2 >= size) throw new Error(`renderViews: a ${ksize}-tap blur needs views larger than ${size} px`);
  // The blur passes put one plane (view, channel) per grid layer.
  if (blur && n * C > engine.backend.limits.maxComputeWorkgroupsPerDimension) {
    throw new Error(`renderViews: ${n} views of ${C} channels exceed one blur dispatch; render them in smaller groups`);
  }
  const rec = uploadWords(engine, packViews(src, params, ksize));
  const stride = HEADER + ksize;
  const out = engine.empty([n, C, size, size]);
  const first = blur ? engine.empty([n, C, size, size]) : out;
  const [gx, gy] = grid1d(n);
  engine.backend.dispatch({
    kernel: { name: 'render_views', source: renderSource, defines: { CHANNELS: C, RGB: C === 3, FINAL: !blur } },
    inputs: [src.pixels.buffer, src.table.buffer, rec.buffer],
    outputs: [first.buffer],
    uniforms: uniforms([n, src.count, size, stride, gx], opts),
    workgroups: [gx, gy],
  });
  if (blur) {
    const mid = engine.empty([n, C, size, size]);
    const segments = Math.ceil(size / BLUR_SPAN);
    const u = uniforms([size, stride, segments], opts);
    for (const [vertical, from, to] of [[false, first, mid], [true, mid, out]] as const) {
      engine.backend.dispatch({
        kernel: { name: vertical ? 'blur_views_v' : 'blur_views_h', source: blurSource, defines: { VERTICAL: vertical, CHANNELS: C, KSIZE: ksize } },
        inputs: [rec.buffer, from.buffer],
        outputs: [to.buffer],
        uniforms: u,
        workgroups: [Math.ceil((size * segments) / BLUR_WG), 1, n * C],
      });
    }
    first.dispose();
    mid.dispose();
  }
  rec.dispose();
  return out;
}
