// A run directory as the report reads it: the configuration it was trained with (config.yaml), its
// log (log.jsonl: step records and k-NN records) and, for the demo's runs, the demo's summary.json
// beside or above it.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { applyValues, DEFAULTS, type TrainConfig } from '../train/config.js';
import type { ViewParams } from '../views/params.js';

export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  images_per_s: number;
  /** Per sample: the chosen combination's candidate view indices. */
  selected: number[][];
  score: number[] | null;
  /** Mean score over every scored combination of every sample (absent without a selection forward, and in older logs). */
  score_all_mean?: number;
  /** Dataset index of every sample (absent in logs written before it was recorded). */
  indices?: number[];
  /** The combinations scored at this step (absent in older logs: all of them). */
  rows?: number[][];
  /** Every combination's score for the first K samples. */
  candidate_scores?: number[][] | null;
  /** Per group, view-major: entry v·B + b is candidate view v of sample b. */
  views: ViewParams[][];
  times_ms?: Record<string, number>;
}

export interface KnnRecord {
  step: number;
  top1: number;
  ms?: number;
}

export interface DemoSummary {
  knn?: Record<string, number>;
  linear?: Record<string, number>;
  runs?: Record<string, { seconds: number; imagesPerSecond: number; lastLoss: number }>;
  [key: string]: unknown;
}

export interface Run {
  dir: string;
  /** Short name: the directory's. */
  name: string;
  /** What it trained: 'SimSiam, HVP (hardest of 4 views)'. */
  label: string;
  config: TrainConfig;
  steps: StepRecord[];
  knn: KnnRecord[];
  summary: DemoSummary | null;
}

export function runLabel(c: TrainConfig): string {
  const method = { simsiam: 'SimSiam', simclr: 'SimCLR', dino: 'DINO', ibot: 'iBOT' }[c.method];
  return c.select === 'random' ? `${method}, random views` : `${method}, HVP (${c.select} of ${c.views} views)`;
}

/** Parse log.jsonl; a step logged twice (a run resumed from an earlier checkpoint) keeps its last record. */
export function parseLog(text: string, source: string): { steps: StepRecord[]; knn: KnnRecord[] } {
  const steps = new Map<number, StepRecord>();
  const knn = new Map<number, KnnRecord>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${source}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    if (rec.event === 'knn') knn.set(rec.step as number, rec as unknown as KnnRecord);
    else if (rec.event === undefined && typeof rec.step === 'number') steps.set(rec.step, rec as unknown as StepRecord);
  });
  const byStep = <T extends { step: number }>(m: Map<number, T>) => [...m.values()].sort((a, b) => a.step - b.step);
  return { steps: byStep(steps), knn: byStep(knn) };
}

export async function readRun(dir: string): Promise<Run> {
  const configPath = join(dir, 'config.yaml');
  const logPath = join(dir, 'log.jsonl');
  for (const p of [configPath, logPath]) if (!existsSync(p)) throw new Error(`${dir} is not a run directory: ${basename(p)} is missing`);
  const raw = (parseYaml(await readFile(configPath, 'utf8')) ?? {}) as Record<string, unknown>;
  const config = applyValues(DEFAULTS, raw, configPath);
  const { steps, knn } = parseLog(await readFile(logPath, 'utf8'), logPath);
  let summary: DemoSummary | null = null;
  for (const p of [join(dir, 'summary.json'), join(dirname(dir), 'summary.json')]) {
    if (existsSync(p)) {
      summary = JSON.parse(await readFile(p, 'utf8')) as DemoSummary;
      break;
    }
  }
  return { dir, name: basename(dir), label: runLabel(config), config, steps, knn, summary };
}
