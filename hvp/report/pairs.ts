// Every logged selection as pair statistics: for each logged sample, the chosen combination's pair
// and every scored candidate's, split into the early and late halves of the logged steps, so the
// report can show what the selection prefers and how that drifts over training.

import { dinoCombinations, ibotCombinations, pairCombinations } from '../select/index.js';
import type { TrainConfig } from '../train/config.js';
import type { ViewParams } from '../views/params.js';
import { pairStats, type PairStats } from './geometry.js';
import type { Run, StepRecord } from './run.js';

/** Every combination a method scores (the rows of a step logged without `rows`). */
export function allCombinations(c: TrainConfig): number[][] {
  if (c.method === 'dino') return dinoCombinations(c.views, c.localCrops, c.localCropsUsed || c.localCrops);
  if (c.method === 'ibot') return ibotCombinations(c.views);
  return pairCombinations(c.views, { anchor: c.anchor });
}

export function stepRows(rec: StepRecord, c: TrainConfig): number[][] {
  return rec.rows ?? allCombinations(c);
}

/** Parameters of candidate view `v` (numbered over the groups in order) of sample `b`. */
export function candidateView(rec: StepRecord, v: number, b: number): ViewParams {
  const batch = rec.selected.length;
  let at = v;
  for (const group of rec.views) {
    const n = group.length / batch;
    if (at < n) return group[at * batch + b];
    at -= n;
  }
  throw new Error(`step ${rec.step}: candidate view ${v} is beyond the ${rec.views.reduce((s, g) => s + g.length / batch, 0)} logged views`);
}

/** Index of the chosen combination of sample b in the step's rows. */
export function chosenRow(rec: StepRecord, rows: number[][], b: number): number {
  const want = rec.selected[b].join(',');
  return rows.findIndex((r) => r.join(',') === want);
}

export interface PairSamples {
  chosen: PairStats[];
  all: PairStats[];
}

export interface PairsOverTraining {
  early: PairSamples;
  late: PairSamples;
  /** The last step counted as early. */
  split: number;
}

/**
 * Pair statistics of the first two views of every combination (the pair for SimSiam/SimCLR, the two
 * globals for DINO/iBOT) of every sample of every logged step. `sourceSize(index)` is the dataset
 * image's [height, width].
 */
export function collectPairs(run: Run, sourceSize: (index: number) => readonly [number, number]): PairsOverTraining {
  const out: PairsOverTraining = { early: { chosen: [], all: [] }, late: { chosen: [], all: [] }, split: -1 };
  const logged = run.steps.filter((r) => r.indices);
  if (logged.length === 0) return out;
  out.split = logged[Math.max(0, Math.ceil(logged.length / 2) - 1)].step;
  for (const rec of logged) {
    const half = rec.step <= out.split ? out.early : out.late;
    const rows = stepRows(rec, run.config);
    for (let b = 0; b < rec.selected.length; b++) {
      const [h, w] = sourceSize(rec.indices![b]);
      const chosen = chosenRow(rec, rows, b);
      rows.forEach((row, r) => {
        if (row.length < 2) return;
        const s = pairStats(candidateView(rec, row[0], b), candidateView(rec, row[1], b), h, w);
        half.all.push(s);
        if (r === chosen) half.chosen.push(s);
      });
    }
  }
  return out;
}

/** Fraction of `values` in each of `bins` equal bins over [lo, hi] (values outside go to the end bins). */
export function histogram(values: readonly number[], lo: number, hi: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)))]++;
  return counts.map((c) => (values.length ? c / values.length : 0));
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : NaN;
}

export interface Feature {
  label: string;
  /** Values of one pair (two for per-view features). */
  of: (s: PairStats) => number[];
  range: [number, number];
  /** 0/1 features are shown as fractions, not histograms. */
  binary?: boolean;
}

export const FEATURES: Feature[] = [
  { label: 'crop area of each view (fraction of the image)', of: (s) => [s.areaA, s.areaB], range: [0, 1] },
  { label: 'IoU of the two crops', of: (s) => [s.iou], range: [0, 1] },
  { label: 'distance of the crop centres (image sides)', of: (s) => [s.centre], range: [0, 1] },
  { label: 'colour-jitter strength difference', of: (s) => [s.jitterDiff], range: [0, 1.5] },
  { label: 'flip differs', of: (s) => [s.flipDiff], range: [0, 1], binary: true },
  { label: 'grayscale in either view', of: (s) => [s.gray], range: [0, 1], binary: true },
  { label: 'blur in either view', of: (s) => [s.blur], range: [0, 1], binary: true },
  { label: 'solarise in either view', of: (s) => [s.solarize], range: [0, 1], binary: true },
];

export function featureValues(f: Feature, pairs: readonly PairStats[]): number[] {
  return pairs.flatMap((s) => f.of(s));
}
