// The report's pair statistics against hand-computed cases: crop area, IoU, centre distance, jitter
// strength, the per-pair flags, histograms, and which candidate pairs count as chosen.

import { describe, expect, it } from 'vitest';
import { centreDistance, cropArea, cropIoU, jitterStrength, pairStats } from '../hvp/report/geometry.js';
import { collectPairs, histogram } from '../hvp/report/pairs.js';
import type { Run, StepRecord } from '../hvp/report/run.js';
import { parseLog } from '../hvp/report/run.js';
import { DEFAULTS } from '../hvp/train/config.js';
import type { ViewParams } from '../hvp/views/params.js';

const view = (crop: ViewParams['crop'], over: Partial<ViewParams> = {}): ViewParams => ({ crop, flip: false, jitter: null, gray: false, blurSigma: 0, solarize: false, ...over });

describe('pair geometry', () => {
  it('crop area is the fraction of the image', () => {
    expect(cropArea({ i: 0, j: 0, h: 10, w: 20 }, 20, 40)).toBe(0.25);
    expect(cropArea({ i: 3, j: 1, h: 28, w: 28 }, 28, 28)).toBe(1);
  });

  it('IoU: overlapping, contained, disjoint, touching, identical', () => {
    const a = { i: 0, j: 0, h: 10, w: 10 };
    expect(cropIoU(a, { i: 5, j: 5, h: 10, w: 10 })).toBeCloseTo(25 / 175, 15);
    expect(cropIoU(a, { i: 2, j: 2, h: 5, w: 5 })).toBe(0.25);
    expect(cropIoU(a, { i: 20, j: 0, h: 4, w: 4 })).toBe(0);
    expect(cropIoU(a, { i: 10, j: 0, h: 10, w: 10 })).toBe(0);
    expect(cropIoU(a, a)).toBe(1);
    // Rectangles: a 4×6 at (1, 2) against a 6×4 at (2, 1): intersection rows 2..5, columns 2..5 = 9 px.
    expect(cropIoU({ i: 1, j: 2, h: 4, w: 6 }, { i: 2, j: 1, h: 6, w: 4 })).toBeCloseTo(9 / (24 + 24 - 9), 15);
  });

  it('centre distance is measured in image heights (rows) and widths (columns)', () => {
    // Centres (5, 5) and (10, 10) in a 20×40 image: dy = 5/20, dx = 5/40.
    expect(centreDistance({ i: 0, j: 0, h: 10, w: 10 }, { i: 5, j: 5, h: 10, w: 10 }, 20, 40)).toBeCloseTo(Math.sqrt(0.25 ** 2 + 0.125 ** 2), 15);
    expect(centreDistance({ i: 2, j: 2, h: 4, w: 4 }, { i: 0, j: 0, h: 8, w: 8 }, 8, 8)).toBe(0);
  });

  it('jitter strength is the L1 distance of the factors from the identity', () => {
    expect(jitterStrength(view({ i: 0, j: 0, h: 1, w: 1 }, { jitter: { brightness: 1.2, contrast: 0.7, saturation: 1, hue: -0.05, order: [0, 1, 2, 3] } }))).toBeCloseTo(0.55, 15);
    expect(jitterStrength(view({ i: 0, j: 0, h: 1, w: 1 }))).toBe(0);
  });

  it('pairStats combines them with the flags of either view', () => {
    const a = view({ i: 0, j: 0, h: 10, w: 10 }, { flip: true, jitter: { brightness: 1.4, contrast: 1, saturation: 1, hue: 0, order: [3, 2, 1, 0] } });
    const b = view({ i: 5, j: 5, h: 10, w: 10 }, { blurSigma: 0.5 });
    expect(pairStats(a, b, 20, 20)).toEqual({
      areaA: 0.25,
      areaB: 0.25,
      iou: 25 / 175,
      centre: Math.hypot(0.25, 0.25),
      flipDiff: 1,
      jitterDiff: expect.closeTo(0.4, 12) as unknown as number,
      gray: 0,
      blur: 1,
      solarize: 0,
    });
    expect(pairStats(b, { ...b, gray: true, solarize: true }, 20, 20)).toMatchObject({ flipDiff: 0, gray: 1, blur: 1, solarize: 1, iou: 1, centre: 0 });
  });

  it('histogram: fractions per bin, ends inclusive', () => {
    expect(histogram([0, 0.1, 0.5, 0.99, 1, 1.7, -1], 0, 1, 4)).toEqual([3 / 7, 0, 1 / 7, 3 / 7]);
  });
});

describe('collectPairs', () => {
  it('counts every scored pair of every sample, the chosen one once, split into early and late halves', () => {
    const crops = [
      { i: 0, j: 0, h: 4, w: 4 },
      { i: 4, j: 4, h: 4, w: 4 },
      { i: 0, j: 0, h: 8, w: 8 },
    ];
    // One sample (B = 1), three candidate views, view-major.
    const rec = (step: number, selected: number[]): StepRecord => ({
      step,
      loss: 0,
      lr: 0,
      images_per_s: 0,
      selected: [selected],
      score: [0],
      indices: [7],
      rows: [[0, 1], [0, 2], [1, 2]],
      views: [crops.map((c) => view(c))],
    });
    const run: Run = { dir: '', name: 'hvp', label: '', config: { ...DEFAULTS, views: 3 }, steps: [rec(0, [1, 2]), rec(10, [0, 1])], knn: [], summary: null };
    const p = collectPairs(run, (i) => (i === 7 ? [8, 8] : [0, 0]));
    expect(p.split).toBe(0);
    expect(p.early.all.map((s) => s.iou)).toEqual([0, 0.25, 0.25]);
    expect(p.early.chosen).toEqual([pairStats(view(crops[1]), view(crops[2]), 8, 8)]);
    expect(p.late.chosen).toEqual([pairStats(view(crops[0]), view(crops[1]), 8, 8)]);
    expect(p.late.chosen[0].centre).toBe(Math.hypot(0.5, 0.5));
    expect(p.late.all).toHaveLength(3);
  });

  it('parseLog keeps the last record of a step and separates k-NN records', () => {
    const text = ['{"step":0,"loss":1}', '{"event":"knn","step":0,"top1":0.1}', '{"step":1,"loss":2}', '{"step":1,"loss":3}', '{"event":"skipped","index":3}', ''].join('\n');
    const { steps, knn } = parseLog(text, 'log');
    expect(steps.map((s) => [s.step, s.loss])).toEqual([[0, 1], [1, 3]]);
    expect(knn).toEqual([{ event: 'knn', step: 0, top1: 0.1 }]);
    expect(() => parseLog('{"step":0}\nnot json', 'log.jsonl')).toThrow(/log.jsonl:2: not JSON/);
  });
});
