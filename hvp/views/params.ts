// Per-view augmentation parameters, drawn the way torchvision's transforms draw them, as a plain
// JSON-able record: the renderer consumes it and the training loop logs it (docs/method.md §1 step 6).

import type { Rng } from '../../engine/index.js';
import type { ViewPipeline } from './pipelines.js';

/** Indices of ColorJitter's four ops, in torchvision's fn_idx numbering. */
export const BRIGHTNESS = 0;
export const CONTRAST = 1;
export const SATURATION = 2;
export const HUE = 3;

/** Colour-jitter factors and their order, as torchvision draws them. */
export interface JitterParams {
  /** Factors (1 = identity) and hue shift in turns (0 = identity). */
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  /** A permutation of [0, 1, 2, 3] (brightness, contrast, saturation, hue): the order they apply in. */
  order: number[];
}

/** One view's augmentation parameters: crop box, flip, jitter, grayscale, blur, solarize. */
export interface ViewParams {
  /** Crop box in source pixels: top row i, left column j, height h, width w. */
  crop: { i: number; j: number; h: number; w: number };
  flip: boolean;
  jitter: JitterParams | null;
  gray: boolean;
  /** Gaussian blur σ in output pixels; 0 = no blur. */
  blurSigma: number;
  solarize: boolean;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function uniformIn(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.uniform();
}

/** torchvision RandomResizedCrop.get_params: 10 tries, then a centre crop with the ratio clamped. */
export function sampleCrop(
  srcH: number,
  srcW: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): ViewParams['crop'] {
  const area = srcH * srcW;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * uniformIn(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniformIn(rng, logLo, logHi));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= srcW && h > 0 && h <= srcH) {
      const i = rng.int(srcH - h + 1);
      const j = rng.int(srcW - w + 1);
      return { i, j, h, w };
    }
  }
  const inRatio = srcW / srcH;
  let w = srcW;
  let h = srcH;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return { i: Math.floor((srcH - h) / 2), j: Math.floor((srcW - w) / 2), h, w };
}

/** torch.randperm(4), by Fisher-Yates. */
function permutation4(rng: Rng): number[] {
  const p = [0, 1, 2, 3];
  for (let k = 3; k > 0; k--) {
    const r = rng.int(k + 1);
    [p[k], p[r]] = [p[r], p[k]];
  }
  return p;
}

/** ColorJitter.get_params: factor ranges [max(0, 1-x), 1+x], hue [-h, h]; a zero strength is skipped. */
function sampleJitter(spec: ViewPipeline['jitter'], rng: Rng): JitterParams {
  const order = permutation4(rng);
  const factor = (x: number) => (x > 0 ? uniformIn(rng, Math.max(0, 1 - x), 1 + x) : 1);
  const brightness = factor(spec.brightness);
  const contrast = factor(spec.contrast);
  const saturation = factor(spec.saturation);
  const hue = spec.hue > 0 ? uniformIn(rng, -spec.hue, spec.hue) : 0;
  return { brightness, contrast, saturation, hue, order };
}

/**
 * One view's parameters for a source image of srcH × srcW. Draws in the transform order of docs/method.md §4
 * (crop, flip, jitter, grayscale, blur, solarise); every random choice consumes its draw even when
 * its probability is 0 or 1, so a pipeline's stream of draws does not depend on its probabilities.
 * RandomApply's test is `u < p` (torchvision applies when p ≥ rand, the same up to a null set).
 */
export function sampleViewParams(pipeline: ViewPipeline, srcH: number, srcW: number, rng: Rng): ViewParams {
  if (!(srcH >= 1 && srcW >= 1)) throw new Error(`sampleViewParams: source size ${srcH}x${srcW} is empty`);
  const crop = sampleCrop(srcH, srcW, pipeline.scale, pipeline.ratio, rng);
  const flip = rng.uniform() < pipeline.flip;
  const jitterOn = rng.uniform() < pipeline.jitter.p;
  const jitter = jitterOn ? sampleJitter(pipeline.jitter, rng) : null;
  const gray = rng.uniform() < pipeline.grayscale;
  const blurOn = rng.uniform() < pipeline.blur;
  const sigma = uniformIn(rng, pipeline.blurSigma[0], pipeline.blurSigma[1]);
  const solarize = rng.uniform() < pipeline.solarize;
  return { crop, flip, jitter, gray, blurSigma: blurOn ? sigma : 0, solarize };
}
