// The multi-seed study: mean and spread over seeds, the hardness gap against a brute-force reading of
// every logged candidate score, and `hvp demo --seeds` really training each seed differently.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../engine/index.js';
import { demoMain, demoSettings } from '../cli/demo.js';
import { readRun } from '../hvp/report/index.js';
import { hardnessGap, meanHardness, meanStd, spreadByKey } from '../hvp/report/study.js';
import type { StepRecord } from '../hvp/report/run.js';
import { pretrain } from '../hvp/train/loop.js';
import { idxDir } from './eval-ref.js';
import { sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

describe('mean and spread over seeds', () => {
  it('matches hand-computed sample statistics', () => {
    const s = meanStd([0.6, 0.62, 0.67]);
    expect(s.mean).toBeCloseTo(0.63, 12);
    // Deviations -0.03, -0.01, 0.04: squares sum to 0.0026, over n - 1 = 2.
    expect(s.std).toBeCloseTo(Math.sqrt(0.0013), 12);
    expect(s.n).toBe(3);
    expect(meanStd([0.5])).toEqual({ mean: 0.5, std: 0, n: 1 });
    expect(() => meanStd([])).toThrow(/no values/);
  });

  it('spreads each key present in every record', () => {
    const got = spreadByKey([
      { a: 1, b: 2 },
      { a: 3, b: 6, c: 1 },
    ]);
    expect(Object.keys(got)).toEqual(['a', 'b']);
    expect(got.a).toEqual({ mean: 2, std: Math.SQRT2, n: 2 });
    expect(got.b.std).toBeCloseTo(2 * Math.SQRT2, 12);
  });
});

describe('hardness gap', () => {
  const rec = (step: number, score: number[] | null, all?: number) => ({ step, score, score_all_mean: all }) as unknown as StepRecord;

  it('is the chosen mean minus the mean over all candidates, skipping steps without scores', () => {
    const got = hardnessGap([rec(0, [3, 5], 2), rec(1, null), rec(2, [1, 1]), rec(3, [4, 2], 2.5)]);
    expect(got).toEqual([
      { step: 0, selected: 4, all: 2, gap: 2 },
      { step: 3, selected: 3, all: 2.5, gap: 0.5 },
    ]);
    const avg = meanHardness([got, [{ step: 0, selected: 2, all: 1, gap: 1 }]]);
    expect(avg).toEqual([{ step: 0, selected: 3, all: 1.5, gap: 1.5 }]);
  });

  it('logged by a real HVP run: equals a brute-force reading of every candidate score', async () => {
    const engine = await sharedEngine();
    const config = tiny({ select: 'hardest', views: 3, maxSteps: 3, logSamples: 8 });
    await pretrain(config, { engine, dataset: syntheticDataset(1), progress: false });
    const run = await readRun(config.out);
    expect(run.steps.length).toBe(3);
    for (const s of run.steps) {
      // --log-samples 8 = the whole batch: every combination's score of every sample is in the log.
      const all = s.candidate_scores!;
      expect(all.length).toBe(8);
      const flat = all.flat();
      const mean = flat.reduce((a, v) => a + v, 0) / flat.length;
      expect(s.score_all_mean).toBeCloseTo(mean, 5);
      // The hardest selection trains on each sample's highest score.
      const chosen = all.map((row) => Math.max(...row));
      const [point] = hardnessGap([s]);
      expect(point.selected).toBeCloseTo(chosen.reduce((a, v) => a + v, 0) / chosen.length, 5);
      expect(point.gap).toBeGreaterThanOrEqual(0);
    }
    const random = tiny({ select: 'random', views: 2, maxSteps: 2 });
    await pretrain(random, { engine, dataset: syntheticDataset(1), progress: false });
    expect(hardnessGap((await readRun(random.out)).steps)).toEqual([]);
  });
});

describe('hvp demo settings', () => {
  it('takes any training setting over the preset and refuses unknown ones', () => {
    const s = demoSettings(['--method', 'simclr', '--lr', '0.2', '--seeds', '3', '--seed', '5', '--runs', 'random', '--holdout', '1000'])!;
    expect(s.base).toMatchObject({ method: 'simclr', lr: 0.2, seed: 5, maxSteps: 150, batchSize: 64 });
    expect(s.seeds).toEqual([5, 6, 7]);
    expect(s.runs).toEqual(['random_views']);
    expect(s.holdout).toBe(1000);
    expect(demoSettings([])!.base).toMatchObject({ maxSteps: 150, logEvery: 10, knnEvery: 25, knnBank: 500, knnQueries: 250, views: 4 });
    // Another preset trains its own epochs with its own monitor settings unless flags say otherwise.
    expect(demoSettings(['--preset', 'study-cifar10'])!.base).toMatchObject({ dataset: 'cifar10', maxSteps: 0, epochs: 200, knnEvery: 1000, logEvery: 100 });
    expect(demoSettings(['--preset', 'study-cifar10', '--steps', '20', '--views', '8'])!.base).toMatchObject({ maxSteps: 20, views: 8 });
    expect(() => demoSettings(['--learning-rate', '0.1'])).toThrow(/unknown setting 'learning-rate'/);
    expect(() => demoSettings(['--runs', 'hvp,simclr'])).toThrow(/unknown run 'simclr'/);
    expect(() => demoSettings(['--seeds', '0'])).toThrow(/--seeds must be an integer >= 1/);
  });
});

describe('hvp demo --seeds', () => {
  it('trains every seed from its own initialisation, data order and views, and summarises them', async () => {
    const engine = await sharedEngine();
    const data = mkdtempSync(join(tmpdir(), 'hvp-demo-data-'));
    await idxDir(new Rng(3), data);
    const out = mkdtempSync(join(tmpdir(), 'hvp-demo-'));
    const flags = ['--data', data, '--out', out, '--seeds', '2', '--seed', '4', '--steps', '2', '--batch-size', '8', '--size', '8'];
    const small = ['--widths', '4,4,4,4', '--dim', '16', '--pred-dim', '8', '--knn-every', '0', '--knn-train', '0', '--knn-test', '0', '--log-every', '1'];
    await demoMain([...flags, ...small], engine);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.seeds).toEqual([4, 5]);
    expect(summary.per_seed.map((p: { seed: number }) => p.seed)).toEqual([4, 5]);

    const runs = await Promise.all([4, 5].map((seed) => readRun(join(out, `seed-${seed}`, 'hvp'))));
    expect(runs.map((r) => r.config.seed)).toEqual([4, 5]);
    const [a, b] = runs.map((r) => r.steps[0]);
    expect(a.indices).not.toEqual(b.indices);
    expect(a.views).not.toEqual(b.views);
    // Each seed's own weights scored its own batch.
    expect(a.score).not.toEqual(b.score);

    // The summary's mean and spread are those of its per-seed figures; the hardness gap is the runs' own.
    for (const key of ['random_init', 'hvp', 'random_views']) {
      const values = summary.per_seed.map((p: { knn: Record<string, number> }) => p.knn[key]);
      const s = meanStd(values);
      expect(summary.knn[key]).toBeCloseTo(s.mean, 12);
      expect(summary.knn_std[key]).toBeCloseTo(s.std, 12);
    }
    expect(summary.hardness_gap.per_seed[1].steps).toEqual(hardnessGap(runs[1].steps));
    expect(summary.hardness_gap.mean_over_seeds).toEqual(meanHardness(runs.map((r) => hardnessGap(r.steps))));
    expect(summary.hardness_gap.mean_over_seeds.length).toBe(2);
    // The report names every run of a repeated recipe by its seed.
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    for (const seed of [4, 5]) {
      for (const run of ['HVP (hardest of 4 views)', 'random views']) expect(html).toContain(`SimCLR, ${run} · seed ${seed}`);
      // Each seed's own random-init encoder, from its own summary.
      const own = JSON.parse(readFileSync(join(out, `seed-${seed}`, 'summary.json'), 'utf8'));
      expect(own.knn.raw_pixels).toBe(summary.knn.raw_pixels);
      expect(html).toContain(`<td>random-init encoder · seed ${seed}</td><td>–</td><td>${(100 * own.knn.random_init).toFixed(2)}%</td>`);
    }
  });
});
