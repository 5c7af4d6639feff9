// What a view pair is made of, as numbers: crop area, overlap and centre distance of the two crops,
// flip and colour-jitter differences, and which of grayscale, blur and solarise either view has.
// Crops are boxes in source pixels (ViewParams.crop); distances are in units of the image's sides.

import type { ViewParams } from '../views/params.js';

export type Crop = ViewParams['crop'];

/** Fraction of the source image the crop covers. */
export function cropArea(c: Crop, srcH: number, srcW: number): number {
  return (c.h * c.w) / (srcH * srcW);
}

/** Intersection over union of two crop boxes. */
export function cropIoU(a: Crop, b: Crop): number {
  const ih = Math.max(0, Math.min(a.i + a.h, b.i + b.h) - Math.max(a.i, b.i));
  const iw = Math.max(0, Math.min(a.j + a.w, b.j + b.w) - Math.max(a.j, b.j));
  const inter = ih * iw;
  return inter / (a.h * a.w + b.h * b.w - inter);
}

/** Distance between the crops' centres, with rows measured in image heights and columns in image widths. */
export function centreDistance(a: Crop, b: Crop, srcH: number, srcW: number): number {
  const dy = (a.i + a.h / 2 - (b.i + b.h / 2)) / srcH;
  const dx = (a.j + a.w / 2 - (b.j + b.w / 2)) / srcW;
  return Math.hypot(dx, dy);
}

/**
 * How far a view's colour jitter is from the identity: |brightness − 1| + |contrast − 1| +
 * |saturation − 1| + |hue| (hue in turns); 0 without jitter.
 */
export function jitterStrength(p: ViewParams): number {
  const j = p.jitter;
  return j ? Math.abs(j.brightness - 1) + Math.abs(j.contrast - 1) + Math.abs(j.saturation - 1) + Math.abs(j.hue) : 0;
}

export interface PairStats {
  /** Crop areas of the two views. */
  areaA: number;
  areaB: number;
  iou: number;
  centre: number;
  /** 1 when exactly one view is flipped. */
  flipDiff: number;
  /** |jitterStrength(a) − jitterStrength(b)|. */
  jitterDiff: number;
  /** 1 when either view is grayscale / blurred / solarised. */
  gray: number;
  blur: number;
  solarize: number;
}

/** Statistics of a pair of views of one source image of srcH × srcW. */
export function pairStats(a: ViewParams, b: ViewParams, srcH: number, srcW: number): PairStats {
  return {
    areaA: cropArea(a.crop, srcH, srcW),
    areaB: cropArea(b.crop, srcH, srcW),
    iou: cropIoU(a.crop, b.crop),
    centre: centreDistance(a.crop, b.crop, srcH, srcW),
    flipDiff: a.flip !== b.flip ? 1 : 0,
    jitterDiff: Math.abs(jitterStrength(a) - jitterStrength(b)),
    gray: a.gray || b.gray ? 1 : 0,
    blur: a.blurSigma > 0 || b.blurSigma > 0 ? 1 : 0,
    solarize: a.solarize || b.solarize ? 1 : 0,
  };
}
