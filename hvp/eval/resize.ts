// The evaluation transform for images of mixed sizes, on the CPU: Resize(size / 0.875) of the shorter
// side, then CenterCrop(size), as torchvision's eval pipelines. The resize is bilinear with PIL's
// antialiasing (a triangle filter widened by the downscale factor), so shrinking a large photo averages
// its pixels instead of sampling them. Only the cropped part of the resized image is computed.

import type { Image } from '../data/types.js';

/** Resize edge for a centre crop of `size` (torchvision's 224 → 256). */
export function resizeEdge(size: number): number {
  return Math.floor(size / 0.875);
}

/** Python's round(), which torchvision's CenterCrop uses: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  /** `maxTaps` weights per output position, normalised to sum 1. */
  weights: Float64Array;
  maxTaps: number;
}

/** Filter taps of output positions first .. first + n - 1 of a resize from inSize to outSize. */
function taps(inSize: number, outSize: number, first: number, n: number): Taps {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const maxTaps = Math.ceil(support) * 2 + 1;
  const t: Taps = { start: new Int32Array(n), count: new Int32Array(n), weights: new Float64Array(n * maxTaps), maxTaps };
  for (let o = 0; o < n; o++) {
    const centre = (first + o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support + 0.5));
    const hi = Math.min(inSize, Math.floor(centre + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const w = Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support));
      t.weights[o * maxTaps + i - lo] = w;
      total += w;
    }
    for (let i = lo; i < hi; i++) t.weights[o * maxTaps + i - lo] /= total;
    t.start[o] = lo;
    t.count[o] = hi - lo;
  }
  return t;
}

/**
 * The image resized so its shorter side is resizeEdge(size) and centre-cropped to size × size:
 * [C, size, size] values in [0, 255].
 */
export function resizeCenterCrop(img: Image, channels: number, size: number): Float32Array {
  const { height: h, width: w, pixels } = img;
  const edge = resizeEdge(size);
  // torchvision: the longer side is int(edge · long / short).
  const [rh, rw] = h <= w ? [edge, Math.floor((edge * w) / h)] : [Math.floor((edge * h) / w), edge];
  const top = roundHalfEven((rh - size) / 2);
  const left = roundHalfEven((rw - size) / 2);
  const tx = taps(w, rw, left, size);
  const ty = taps(h, rh, top, size);
  const rows = new Float64Array(h * size);
  const out = new Float32Array(channels * size * size);
  for (let c = 0; c < channels; c++) {
    const plane = c * h * w;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < size; x++) {
        let s = 0;
        const base = x * tx.maxTaps;
        for (let j = 0; j < tx.count[x]; j++) s += tx.weights[base + j] * pixels[plane + y * w + tx.start[x] + j];
        rows[y * size + x] = s;
      }
    }
    for (let y = 0; y < size; y++) {
      const base = y * ty.maxTaps;
      for (let x = 0; x < size; x++) {
        let s = 0;
        for (let j = 0; j < ty.count[y]; j++) s += ty.weights[base + j] * rows[(ty.start[y] + j) * size + x];
        out[c * size * size + y * size + x] = s;
      }
    }
  }
  return out;
}
