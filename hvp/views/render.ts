// Augmented views on the GPU. A batch of uint8 images is uploaded once (uploadBatch); renderViews
// turns per-view parameters (params.ts) into a normalised [n, C, size, size] tensor with one dispatch
// (render.wgsl), or three when some view is blurred (then blur.wgsl blurs horizontally and vertically,
// and its vertical pass solarises and normalises).

import { defineKernel, type Engine, type Tensor } from '../../engine/index.js';
import type { ImageBatch } from '../data/types.js';
import { blurKernelSize } from './pipelines.js';
import type { ViewParams } from './params.js';
import { gaussianKernel1d, type RenderOptions } from './reference.js';
import renderSource from './render.wgsl';
import blurSource from './blur.wgsl';

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
  /** Release the batch's GPU tensors. */
  dispose(): void;
}

/**
 * Word offsets in a view record: crop i j h w, flip, jitter on, the 4 jitter factors (brightness,
 * contrast, saturation, hue; f32 bits), the jitter order (four 2-bit op ids, first op in the low
 * bits), gray, solarise, blur σ, then from `weights` the blur kernel. The shaders see them as F_CROP,
 * F_FLIP, ... through the "views/record" snippet made from this table.
 */
const F = { crop: 0, flip: 4, jitter: 5, factors: 6, order: 10, gray: 11, solarize: 12, sigma: 13, weights: 16 } as const;
/** Words of a view record before the blur weights. */
const HEADER = F.weights;
const RECORD = Object.entries(F)
  .map(([name, at]) => `const F_${name.toUpperCase()} = ${at}u;`)
  .join('\n');
/** Values per thread of blur.wgsl (its window stays in registers). */
const BLUR_SPAN = 8;

const uniforms = { mean: 'vec4<f32>', stdev: 'vec4<f32>' } as const;

/** One 16 x 16 workgroup per view. */
const renderKernel = defineKernel({
  name: 'render_views',
  source: renderSource,
  workgroupSize: [16, 16],
  uniforms: {
    views: 'u32',
    batch: 'u32', // view v renders image v % batch
    size: 'u32',
    stride: 'u32', // u32 words per view record in `rec`
    ...uniforms,
  },
  inputs: { pixels: 'u32', table: 'u32', rec: 'u32' },
  outputs: { out: 'f32' },
  snippets: { 'views/record': RECORD },
});

const blurKernel = (vertical: boolean) =>
  defineKernel({
    name: vertical ? 'blur_views_v' : 'blur_views_h',
    source: blurSource,
    workgroupSize: 64,
    uniforms: {
      size: 'u32',
      stride: 'u32', // u32 words per view record
      segments: 'u32', // ceil(size / SPAN)
      ...uniforms,
    },
    inputs: { rec: 'u32', src: 'f32' },
    outputs: { dst: 'f32' },
    defines: { VERTICAL: vertical, SPAN: BLUR_SPAN },
    snippets: { 'views/record': RECORD },
  });
const blurH = blurKernel(false);
const blurV = blurKernel(true);

function uploadWords(engine: Engine, words: Uint32Array): Tensor {
  const t = engine.empty([Math.max(words.length, 1)], 'i32');
  if (words.length) engine.backend.write(t.buffer, 0, words);
  return t;
}

/** A batch's pixels on the GPU, for renderViews. */
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

/** One record per view, laid out as F says. */
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

/** Normalize's mean and std per channel as vec4s (unused lanes 0 and 1). */
function normalisation(opts: RenderOptions): { mean: number[]; stdev: number[] } {
  const pad = (xs: readonly number[], fill: number) => [0, 1, 2, 3].map((c) => xs[c] ?? fill);
  return { mean: pad(opts.mean, 0), stdev: pad(opts.std, 1) };
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
  const norm = normalisation(opts);
  renderKernel.launch({
    inputs: [src.pixels, src.table, rec],
    outputs: [first],
    uniforms: { views: n, batch: src.count, size, stride, ...norm },
    grid: { workgroups: n },
    defines: { CHANNELS: C, RGB: C === 3, FINAL: !blur },
  });
  if (blur) {
    const mid = engine.empty([n, C, size, size]);
    const segments = Math.ceil(size / BLUR_SPAN);
    for (const [kernel, from, to] of [[blurH, first, mid], [blurV, mid, out]] as const) {
      kernel.launch({
        inputs: [rec, from],
        outputs: [to],
        uniforms: { size, stride, segments, ...norm },
        workgroups: [Math.ceil((size * segments) / kernel.workgroupSize[0]), 1, n * C],
        defines: { CHANNELS: C, KSIZE: ksize },
      });
    }
    first.dispose();
    mid.dispose();
  }
  rec.dispose();
  return out;
}
