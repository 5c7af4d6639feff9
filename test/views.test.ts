// GPU views (hvp/views) against the float64 reference of the same transform, the reference against
// hand-worked values, and the sampler's distributions.

import { describe, expect, it } from 'vitest';
import { Rng } from '../engine/index.js';
import type { ImageBatch } from '../hvp/data/types.js';
import {
  blurKernelSize,
  renderViews,
  renderViewsReference,
  sampleCrop,
  sampleViewParams,
  uploadBatch,
  viewPipeline,
  type RenderOptions,
  type ViewParams,
  type ViewPipeline,
} from '../hvp/views/index.js';
import { gaussianKernel1d, shiftHue } from '../hvp/views/reference.js';
import { engine } from './helpers.js';

/** Random uint8 images packed with odd gaps, so image starts fall mid-word. */
function randomBatch(rng: Rng, channels: number, sizes: [number, number][]): ImageBatch {
  const offsets: number[] = [];
  let at = 1;
  for (const [h, w] of sizes) {
    offsets.push(at);
    at += channels * h * w + 3;
  }
  const pixels = Uint8Array.from({ length: at }, () => rng.int(256));
  return {
    pixels,
    offsets: Uint32Array.from(offsets),
    heights: Uint32Array.from(sizes.map((s) => s[0])),
    widths: Uint32Array.from(sizes.map((s) => s[1])),
    channels,
    labels: new Int32Array(sizes.length),
    indices: Int32Array.from(sizes.keys()),
  };
}

/** Every option a coin flip, with strong jitter, so a few dozen views cover all combinations. */
function coinPipeline(size: number, channels: number, blur: number): ViewPipeline {
  const base = viewPipeline('dino-global-2', { size, channels, scale: [0.1, 1] });
  const strong = channels === 3 ? { saturation: 0.9, hue: 0.5 } : {};
  return { ...base, jitter: { ...base.jitter, p: 0.7, brightness: 0.6, contrast: 0.8, ...strong }, grayscale: channels === 3 ? 0.5 : 0, blur, solarize: 0.5 };
}

function drawParams(p: ViewPipeline, batch: ImageBatch, views: number, rng: Rng): ViewParams[] {
  const out: ViewParams[] = [];
  for (let v = 0; v < views; v++) {
    for (let b = 0; b < batch.offsets.length; b++) out.push(sampleViewParams(p, batch.heights[b], batch.widths[b], rng));
  }
  return out;
}

/** The params exercise each option both ways (so a comparison cannot pass by never meeting one). */
function expectCoverage(params: ViewParams[], channels: number, blur: boolean): void {
  const both = (f: (p: ViewParams) => boolean) => expect(new Set(params.map(f)).size).toBe(2);
  both((p) => p.flip);
  both((p) => p.jitter !== null);
  both((p) => p.solarize);
  if (channels === 3) both((p) => p.gray);
  if (blur) both((p) => p.blurSigma > 0);
  const firsts = new Set(params.flatMap((p) => (p.jitter ? [p.jitter.order[0]] : [])));
  expect(firsts.size).toBeGreaterThanOrEqual(3);
}

async function compareWithReference(batch: ImageBatch, params: ViewParams[], opts: RenderOptions): Promise<void> {
  const e = await engine();
  const src = uploadBatch(e, batch);
  const before = e.backend.counters.dispatches;
  const out = renderViews(e, src, params, opts);
  const blurred = params.some((p) => p.blurSigma > 0);
  expect(e.backend.counters.dispatches - before).toBe(blurred ? 3 : 1);
  expect(out.shape).toEqual([params.length, batch.channels, opts.size, opts.size]);
  const got = await out.toArray();
  out.dispose();
  src.dispose();
  const ref = renderViewsReference(batch, params, opts);
  // 1e-4 on the [0, 1] scale, carried through Normalize's division by std.
  let worst = 0;
  let at = -1;
  let skipped = 0;
  for (let k = 0; k < got.length; k++) {
    if (ref.nearThreshold[k]) {
      skipped++;
      continue;
    }
    const c = Math.floor(k / (opts.size * opts.size)) % batch.channels;
    const err = Math.abs(got[k] - ref.data[k]) * opts.std[c];
    if (!(err <= worst)) [worst, at] = [err, k];
  }
  expect(skipped).toBeLessThan(got.length / 1000);
  if (!(worst <= 1e-4)) throw new Error(`element ${at}: got ${got[at]}, expected ${ref.data[at]} (|err| ${worst} on the [0,1] scale)`);
}

describe('renderViews matches the float64 reference', () => {
  const cases: { name: string; C: number; sizes: [number, number][]; size: number; views: number; blur: number; mean?: number[]; std?: number[] }[] = [
    { name: 'grey 28→28', C: 1, sizes: [[28, 28], [28, 28], [28, 28]], size: 28, views: 12, blur: 0 },
    { name: 'grey 28→24', C: 1, sizes: [[28, 28], [28, 28]], size: 24, views: 16, blur: 0, mean: [0.286], std: [0.353] },
    { name: 'grey mixed sizes → 9 (fewer pixels than threads)', C: 1, sizes: [[31, 23], [12, 40]], size: 9, views: 16, blur: 0 },
    { name: 'RGB 32→32', C: 3, sizes: [[32, 32], [32, 32], [32, 32]], size: 32, views: 12, blur: 0, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] },
    { name: 'RGB 64→40 with blur', C: 3, sizes: [[64, 64], [64, 64]], size: 40, views: 14, blur: 0.5, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    { name: 'RGB odd sizes → 33 with blur', C: 3, sizes: [[37, 29], [50, 41], [33, 33]], size: 33, views: 10, blur: 0.6 },
    { name: 'grey 45→35 with blur', C: 1, sizes: [[45, 45], [45, 45]], size: 35, views: 14, blur: 0.5 },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const rng = new Rng(tc.size * 31 + tc.C);
      const batch = randomBatch(rng, tc.C, tc.sizes);
      const params = drawParams(coinPipeline(tc.size, tc.C, tc.blur), batch, tc.views, rng);
      expectCoverage(params, tc.C, tc.blur > 0);
      const opts = { size: tc.size, mean: tc.mean ?? Array(tc.C).fill(0), std: tc.std ?? Array(tc.C).fill(1) };
      await compareWithReference(batch, params, opts);
    });
  }

  it('renders sampled SimSiam views of RGB and grey images', async () => {
    const rng = new Rng(5);
    for (const [C, size] of [[1, 28], [3, 32], [3, 48]]) {
      const batch = randomBatch(rng, C, [[size, size], [size, size]]);
      const params = drawParams(viewPipeline('simsiam', { size, channels: C }), batch, 4, rng);
      await compareWithReference(batch, params, { size, mean: Array(C).fill(0.5), std: Array(C).fill(0.5) });
    }
  });

  it('rejects crops outside the image and a view count that is not a multiple of the batch', async () => {
    const e = await engine();
    const batch = randomBatch(new Rng(1), 1, [[10, 10], [10, 10]]);
    const src = uploadBatch(e, batch);
    const p = sampleViewParams(viewPipeline('simsiam', { size: 8, channels: 1 }), 10, 10, new Rng(2));
    const opts = { size: 8, mean: [0], std: [1] };
    expect(() => renderViews(e, src, [p], opts)).toThrow(/whole number of views of 2 images/);
    const bad = { ...p, crop: { i: 5, j: 0, h: 6, w: 3 } };
    expect(() => renderViews(e, src, [p, bad], opts)).toThrow(/outside image 1/);
    expect(() => renderViews(e, src, [p, p], { ...opts, mean: [0, 0, 0] })).toThrow(/mean\/std/);
    src.dispose();
  });
});

describe('the float64 reference itself', () => {
  const identity = (h: number, w: number): ViewParams => ({
    crop: { i: 0, j: 0, h, w }, flip: false, jitter: null, gray: false, blurSigma: 0, solarize: false,
  });

  it('is the identity for a full-image crop at the source size, and flips columns', () => {
    const batch = randomBatch(new Rng(3), 3, [[5, 7]]);
    const ref = renderViewsReference(batch, [identity(5, 5), { ...identity(5, 5), flip: true }], { size: 5, mean: [0, 0, 0], std: [1, 1, 1] });
    // Crop is the left 5x5 of the 5x7 image.
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 5; y++) {
        for (let x = 0; x < 5; x++) {
          const px = batch.pixels[batch.offsets[0] + c * 35 + y * 7 + x] / 255;
          expect(ref.data[c * 25 + y * 5 + x]).toBeCloseTo(px, 12);
          expect(ref.data[75 + c * 25 + y * 5 + (4 - x)]).toBeCloseTo(px, 12);
        }
      }
    }
  });

  it('upsamples 2→4 with align_corners=False weights', () => {
    const batch: ImageBatch = {
      pixels: Uint8Array.from([0, 255, 51, 102]), offsets: Uint32Array.of(0), heights: Uint32Array.of(2), widths: Uint32Array.of(2),
      channels: 1, labels: Int32Array.of(0), indices: Int32Array.of(0),
    };
    const ref = renderViewsReference(batch, [identity(2, 2)], { size: 4, mean: [0], std: [1] });
    // Row 0 samples source row 0 exactly (clamped), columns at -0.25→0, 0.25, 0.75, 1.25→1 (clamped by the edge).
    expect(Array.from(ref.data.slice(0, 4))).toEqual([0, 0.25, 0.75, 1].map((t) => expect.closeTo(t, 12)));
    // Row 1 samples source row 0.25.
    expect(ref.data[4]).toBeCloseTo(0.75 * 0 + 0.25 * 0.2, 12);
  });

  it('blurs with torchvision\'s normalised Gaussian taps and reflect padding', () => {
    const e = Math.exp(-0.5 / 4);
    expect(Array.from(gaussianKernel1d(3, 2))).toEqual([e, 1, e].map((v) => expect.closeTo(v / (1 + 2 * e), 14)));
    // 40 px views take a 5-tap kernel. An impulse in the corner: reflect padding never maps a tap onto
    // index 0 except the tap at offset 0 (edge-replicating padding would add the outer taps there too).
    const pixels = new Uint8Array(40 * 40);
    pixels[0] = 255;
    const batch: ImageBatch = {
      pixels, offsets: Uint32Array.of(0), heights: Uint32Array.of(40), widths: Uint32Array.of(40),
      channels: 1, labels: Int32Array.of(0), indices: Int32Array.of(0),
    };
    const ref = renderViewsReference(batch, [{ ...identity(40, 40), blurSigma: 1 }], { size: 40, mean: [0], std: [1] });
    const w = gaussianKernel1d(5, 1);
    expect(ref.data[0]).toBeCloseTo(w[2] * w[2], 14);
    expect(ref.data[1]).toBeCloseTo(w[1] * w[2], 14);
    expect(ref.data[2 * 40 + 2]).toBeCloseTo(w[0] * w[0], 14);
  });

  it('shifts hue around the colour wheel and solarises at 0.5', () => {
    expect(shiftHue(1, 0, 0, 1 / 3).map((v) => +v.toFixed(12))).toEqual([0, 1, 0]);
    expect(shiftHue(0.2, 0.6, 0.4, 0).map((v) => +v.toFixed(12))).toEqual([0.2, 0.6, 0.4]);
    expect(shiftHue(0.5, 0.5, 0.5, 0.3)).toEqual([0.5, 0.5, 0.5]);
    const batch: ImageBatch = {
      pixels: Uint8Array.from([0, 100, 200, 255]), offsets: Uint32Array.of(0), heights: Uint32Array.of(1), widths: Uint32Array.of(4),
      channels: 1, labels: Int32Array.of(0), indices: Int32Array.of(0),
    };
    const p = { ...identity(1, 4), solarize: true, jitter: { brightness: 1, contrast: 0, saturation: 1, hue: 0, order: [1, 0, 2, 3] } };
    // Contrast 0 replaces every pixel by the mean (555/1020 ≥ 0.5), which solarise then inverts.
    const ref = renderViewsReference(batch, [p], { size: 4, mean: [0], std: [1] });
    for (const v of ref.data) expect(v).toBeCloseTo(1 - 555 / 1020, 12);
  });
});

describe('sampleViewParams', () => {
  const draws = (p: ViewPipeline, n: number, seed: number, h = 28, w = 28) => {
    const rng = new Rng(seed);
    return Array.from({ length: n }, () => sampleViewParams(p, h, w, rng));
  };
  const rate = (ps: ViewParams[], f: (p: ViewParams) => boolean) => ps.filter(f).length / ps.length;

  it('draws SimSiam views with the documented rates and ranges', () => {
    const ps = draws(viewPipeline('simsiam', { size: 224, channels: 3 }), 2000, 11, 224, 224);
    const area = ps.reduce((s, p) => s + (p.crop.h * p.crop.w) / (224 * 224), 0) / ps.length;
    // Uniform(0.2, 1) has mean 0.6; rejected tries (a side over 224) pull it slightly down.
    expect(area).toBeGreaterThan(0.53);
    expect(area).toBeLessThan(0.62);
    for (const p of ps) {
      const { i, j, h, w } = p.crop;
      expect(i + h <= 224 && j + w <= 224 && i >= 0 && j >= 0).toBe(true);
      expect(w / h).toBeGreaterThan(0.75 * 0.97);
      expect(w / h).toBeLessThan((4 / 3) * 1.03);
      if (p.jitter) {
        expect([...p.jitter.order].sort()).toEqual([0, 1, 2, 3]);
        for (const f of [p.jitter.brightness, p.jitter.contrast, p.jitter.saturation]) expect(f >= 0.6 && f <= 1.4).toBe(true);
        expect(Math.abs(p.jitter.hue)).toBeLessThanOrEqual(0.1);
      }
      if (p.blurSigma) expect(p.blurSigma >= 0.1 && p.blurSigma <= 2).toBe(true);
    }
    expect(rate(ps, (p) => p.flip)).toBeCloseTo(0.5, 1);
    expect(rate(ps, (p) => p.jitter !== null)).toBeCloseTo(0.8, 1);
    expect(rate(ps, (p) => p.gray)).toBeCloseTo(0.2, 1);
    expect(rate(ps, (p) => p.blurSigma > 0)).toBeCloseTo(0.5, 1);
    expect(rate(ps, (p) => p.solarize)).toBe(0);
  });

  it('turns blur off at 32 px and colour off on grey images', () => {
    const ps = draws(viewPipeline('simsiam', { size: 28, channels: 1 }), 500, 12);
    expect(rate(ps, (p) => p.blurSigma > 0)).toBe(0);
    expect(rate(ps, (p) => p.gray)).toBe(0);
    for (const p of ps) if (p.jitter) expect([p.jitter.saturation, p.jitter.hue]).toEqual([1, 0]);
    const g2 = draws(viewPipeline('dino-global-2', { size: 96, channels: 3 }), 2000, 13);
    expect(rate(g2, (p) => p.solarize)).toBeCloseTo(0.2, 1);
    expect(rate(g2, (p) => p.blurSigma > 0)).toBeCloseTo(0.1, 1);
    expect(rate(draws(viewPipeline('dino-global-1', { size: 96, channels: 3 }), 200, 14), (p) => p.blurSigma > 0)).toBe(1);
    expect(blurKernelSize(224)).toBe(23);
    expect(blurKernelSize(96)).toBe(9);
  });

  it('honours a scale override and falls back to the ratio-clamped centre crop', () => {
    const ps = draws(viewPipeline('dino-local', { size: 96, channels: 3, scale: [0.05, 0.25] }), 500, 15, 224, 224);
    for (const p of ps) expect((p.crop.h * p.crop.w) / 224 ** 2).toBeLessThan(0.27);
    // A 10x100 strip: no try fits (h ≈ 30 > 10), so the crop is the centred 10 x round(10·4/3).
    expect(sampleCrop(10, 100, [0.9, 1], [3 / 4, 4 / 3], new Rng(1))).toEqual({ i: 0, j: 43, h: 10, w: 13 });
  });

  it('is deterministic for a seed and JSON round-trippable', () => {
    const p = viewPipeline('simclr', { size: 64, channels: 3 });
    const a = draws(p, 50, 21);
    expect(draws(p, 50, 21)).toEqual(a);
    expect(draws(p, 50, 22)).not.toEqual(a);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
  });
});
