// The arithmetic of a multi-seed comparison: mean and spread of a figure over seeds, and the hardness
// gap of an HVP run (how much harder the combinations it trained on were than the candidates it drew).

import type { StepRecord } from './run.js';

export interface Spread {
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator); 0 for a single value. */
  std: number;
  n: number;
}

export function meanStd(values: readonly number[]): Spread {
  const n = values.length;
  if (n === 0) throw new Error('meanStd: no values');
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/** Mean ± std of every key present in all the records (e.g. k-NN top-1 per feature set, one record per seed). */
export function spreadByKey(records: readonly Record<string, number>[]): Record<string, Spread> {
  if (!records.length) return {};
  const keys = Object.keys(records[0]).filter((k) => records.every((r) => typeof r[k] === 'number'));
  return Object.fromEntries(keys.map((k) => [k, meanStd(records.map((r) => r[k]))]));
}

export interface HardnessPoint {
  step: number;
  /** Mean score of the combinations trained on (one per sample). */
  selected: number;
  /** Mean score of every scored candidate combination of every sample. */
  all: number;
  /** selected - all: positive when the run trains on harder combinations than a random draw would give. */
  gap: number;
}

/**
 * The hardness gap at every logged step that scored its candidates: the mean of the chosen scores
 * against the mean over all scored combinations (`score_all_mean`, logged from the same scores).
 * Steps without scores (random selection, or logs written before the field) are left out.
 */
export function hardnessGap(steps: readonly StepRecord[]): HardnessPoint[] {
  const out: HardnessPoint[] = [];
  for (const s of steps) {
    if (!s.score?.length || typeof s.score_all_mean !== 'number') continue;
    const selected = s.score.reduce((a, v) => a + v, 0) / s.score.length;
    out.push({ step: s.step, selected, all: s.score_all_mean, gap: selected - s.score_all_mean });
  }
  return out;
}

/** Per step present in every run, the mean over runs of each field of the hardness gap. */
export function meanHardness(runs: readonly HardnessPoint[][]): HardnessPoint[] {
  if (!runs.length) return [];
  const steps = runs[0].map((p) => p.step).filter((step) => runs.every((r) => r.some((p) => p.step === step)));
  return steps.map((step) => {
    const at = runs.map((r) => r.find((p) => p.step === step)!);
    const avg = (f: (p: HardnessPoint) => number) => at.reduce((s, p) => s + f(p), 0) / at.length;
    return { step, selected: avg((p) => p.selected), all: avg((p) => p.all), gap: avg((p) => p.gap) };
  });
}

/** "61.23 ± 0.45" in percent (std omitted for a single seed). */
export function formatSpread(s: Spread, digits = 2): string {
  const m = (100 * s.mean).toFixed(digits);
  return s.n > 1 ? `${m} ± ${(100 * s.std).toFixed(digits)}` : m;
}
