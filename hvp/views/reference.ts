// The view transform on the CPU in float64, written straight from torchvision's functional
// definitions on float images: the reference the GPU renderer (render.ts) is tested against, and a
// readable statement of what it computes.

import type { ImageBatch } from '../data/types.js';
import { blurKernelSize } from './pipelines.js';
import { BRIGHTNESS, CONTRAST, HUE, SATURATION, type JitterParams, type ViewParams } from './params.js';

/** Output size and normalisation of rendered views. */
export interface RenderOptions {
  size: number;
  mean: readonly number[];
  std: readonly number[];
}

/** Views rendered by the float64 CPU reference. */
export interface ReferenceViews {
  /** [n, C, size, size], normalised. */
  data: Float64Array;
  shape: [number, number, number, number];
  /**
   * 1 where a solarised view's pre-solarise value lies within 1e-5 of the 0.5 threshold: there f32
   * and f64 may fall on different sides of it, so a comparison should skip the element.
   */
  nearThreshold: Uint8Array;
}

/** PIL's luma weights (ITU-R 601-2: 0.299/0.587/0.114, as Image.convert('L'); torchvision's tensor path uses 0.2989). */
export const GRAY_WEIGHTS = [0.299, 0.587, 0.114] as const;

type Planes = Float64Array[];

/** F.resized_crop with bilinear, antialias=False, align_corners=False; then hflip. Values in [0, 1]. */
function resizedCrop(batch: ImageBatch, b: number, p: ViewParams, size: number): Planes {
  const { i, j, h, w } = p.crop;
  const H = batch.heights[b];
  const W = batch.widths[b];
  const base = batch.offsets[b];
  const planes: Planes = [];
  for (let c = 0; c < batch.channels; c++) {
    const plane = new Float64Array(size * size);
    const at = (y: number, x: number) => batch.pixels[base + c * H * W + (i + y) * W + (j + x)] / 255;
    for (let y = 0; y < size; y++) {
      const sy = Math.max(((y + 0.5) * h) / size - 0.5, 0);
      const y0 = Math.min(Math.floor(sy), h - 1);
      const y1 = Math.min(y0 + 1, h - 1);
      const ly = sy - y0;
      for (let x = 0; x < size; x++) {
        const xs = p.flip ? size - 1 - x : x;
        const sx = Math.max(((xs + 0.5) * w) / size - 0.5, 0);
        const x0 = Math.min(Math.floor(sx), w - 1);
        const x1 = Math.min(x0 + 1, w - 1);
        const lx = sx - x0;
        const top = (1 - lx) * at(y0, x0) + lx * at(y0, x1);
        const bottom = (1 - lx) * at(y1, x0) + lx * at(y1, x1);
        plane[y * size + x] = (1 - ly) * top + ly * bottom;
      }
    }
    planes.push(plane);
  }
  return planes;
}

const clamp01 = (v: number) => Math.min(Math.max(v, 0), 1);

function grayAt(planes: Planes, k: number): number {
  if (planes.length === 1) return planes[0][k];
  return GRAY_WEIGHTS[0] * planes[0][k] + GRAY_WEIGHTS[1] * planes[1][k] + GRAY_WEIGHTS[2] * planes[2][k];
}

/** torchvision _blend: ratio·a + (1-ratio)·b, clamped to [0, 1]. */
function blendInPlace(planes: Planes, ratio: number, other: (k: number) => number): void {
  const n = planes[0].length;
  const o = Float64Array.from({ length: n }, (_, k) => other(k));
  for (const plane of planes) for (let k = 0; k < n; k++) plane[k] = clamp01(ratio * plane[k] + (1 - ratio) * o[k]);
}

/** torchvision _rgb2hsv → shift hue → _hsv2rgb, for one pixel. */
export function shiftHue(r: number, g: number, b: number, shift: number): [number, number, number] {
  const maxc = Math.max(r, g, b);
  const minc = Math.min(r, g, b);
  const eqc = maxc === minc;
  const cr = maxc - minc;
  const s = cr / (eqc ? 1 : maxc);
  const div = eqc ? 1 : cr;
  const rc = (maxc - r) / div;
  const gc = (maxc - g) / div;
  const bc = (maxc - b) / div;
  let hh: number;
  if (maxc === r) hh = bc - gc;
  else if (maxc === g) hh = 2 + rc - bc;
  else hh = 4 + gc - rc;
  let h = (hh / 6 + 1) % 1;
  h = (((h + shift) % 1) + 1) % 1;
  const v = maxc;
  const i6 = Math.floor(h * 6);
  const f = h * 6 - i6;
  const p = clamp01(v * (1 - s));
  const q = clamp01(v * (1 - s * f));
  const t = clamp01(v * (1 - s * (1 - f)));
  const table: [number, number, number][] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]];
  return table[((i6 % 6) + 6) % 6];
}

function applyJitter(planes: Planes, jit: JitterParams): void {
  const rgb = planes.length === 3;
  for (const op of jit.order) {
    if (op === BRIGHTNESS) blendInPlace(planes, jit.brightness, () => 0);
    else if (op === CONTRAST) {
      let sum = 0;
      for (let k = 0; k < planes[0].length; k++) sum += grayAt(planes, k);
      const mean = sum / planes[0].length;
      blendInPlace(planes, jit.contrast, () => mean);
    } else if (op === SATURATION && rgb) {
      blendInPlace(planes, jit.saturation, (k) => grayAt(planes, k));
    } else if (op === HUE && rgb) {
      for (let k = 0; k < planes[0].length; k++) {
        const out = shiftHue(planes[0][k], planes[1][k], planes[2][k], jit.hue);
        for (let c = 0; c < 3; c++) planes[c][k] = out[c];
      }
    }
  }
}

/** Normalised Gaussian taps exp(-x²/2σ²), x = -r..r (torchvision's _get_gaussian_kernel1d). */
export function gaussianKernel1d(ksize: number, sigma: number): Float64Array {
  const r = (ksize - 1) / 2;
  const w = Float64Array.from({ length: ksize }, (_, k) => Math.exp(-0.5 * ((k - r) / sigma) ** 2));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
}

/** torchvision gaussian_blur: reflect padding, the 1-D kernel along one axis then the other. */
function blurPlane(plane: Float64Array, size: number, sigma: number): Float64Array {
  const ks = blurKernelSize(size);
  const r = (ks - 1) / 2;
  const wts = gaussianKernel1d(ks, sigma);
  const reflect = (t: number) => (t < 0 ? -t : t >= size ? 2 * size - 2 - t : t);
  const pass = (src: Float64Array, horizontal: boolean) => {
    const dst = new Float64Array(src.length);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let acc = 0;
        for (let k = 0; k < ks; k++) {
          const at = horizontal ? y * size + reflect(x + k - r) : reflect(y + k - r) * size + x;
          acc += wts[k] * src[at];
        }
        dst[y * size + x] = acc;
      }
    }
    return dst;
  };
  return pass(pass(plane, true), false);
}

/** Views of batch image v mod B for every params entry (view-major, as renderViews takes them). */
export function renderViewsReference(batch: ImageBatch, params: readonly ViewParams[], opts: RenderOptions): ReferenceViews {
  const { size } = opts;
  const C = batch.channels;
  const B = batch.offsets.length;
  const n = params.length;
  const data = new Float64Array(n * C * size * size);
  const nearThreshold = new Uint8Array(data.length);
  params.forEach((p, v) => {
    let planes = resizedCrop(batch, v % B, p, size);
    if (p.jitter) applyJitter(planes, p.jitter);
    if (p.gray && C === 3) {
      const l = Float64Array.from({ length: size * size }, (_, k) => grayAt(planes, k));
      planes = [l, Float64Array.from(l), Float64Array.from(l)];
    }
    if (p.blurSigma > 0) planes = planes.map((pl) => blurPlane(pl, size, p.blurSigma));
    planes.forEach((pl, c) => {
      const at = (v * C + c) * size * size;
      for (let k = 0; k < pl.length; k++) {
        let val = pl[k];
        if (p.solarize) {
          if (Math.abs(val - 0.5) < 1e-5) nearThreshold[at + k] = 1;
          if (val >= 0.5) val = 1 - val;
        }
        data[at + k] = (val - opts.mean[c]) / opts.std[c];
      }
    });
  });
  return { data, shape: [n, C, size, size], nearThreshold };
}
