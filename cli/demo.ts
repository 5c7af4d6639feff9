// `hvp demo` (what `npm start` runs): on Fashion-MNIST, pretrain (SimCLR by default) with HVP and
// with random views for the same number of steps from the same seeds, then compare k-NN top-1 for raw
// pixels, the randomly initialised encoder, random views and HVP, with the spread over seeds and HVP's
// hardness gap.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine } from '../engine/index.js';
import { openDataset } from '../hvp/data/index.js';
import { formatSpread, meanHardness, spreadByKey, type Spread } from '../hvp/report/study.js';
import { applyValues, kebabKey, presetConfig, validateConfig, type TrainConfig } from '../hvp/train/config.js';
import { flagValues } from './pretrain.js';
import { evalSets, knnTop1, RUN_DIRS, RUN_NAMES, runSeed, type RunName, type SeedResult } from './demo-study.js';
import { writeReport } from './report.js';

/** The recipe `npm start` runs. */
export const DEMO_PRESET = 'simclr-fashion-mnist';

export const DEMO_HELP = `Usage: hvp demo [options] [--setting value ...]

Pretrains on Fashion-MNIST (or the --preset's data) with Hard View Pretraining (4 views per image, the hardest pair trained on)
and on random view pairs, from the same seed for the same number of steps, then prints k-NN top-1
(k = 20, T = 0.07) for raw pixels, the randomly initialised encoder and both pretrained encoders.
With --seeds K it does so for K seeds (initialisation, data order and views all change with the
seed) and prints mean ± standard deviation and every seed's figure. Writes OUT/summary.json (per-seed
figures, mean and spread, HVP's hardness gap: mean score of the trained combinations against the
mean over every candidate, per logged step), the runs' logs and checkpoints (OUT/hvp and OUT/random,
or OUT/seed-S/... for several seeds) and OUT/report.html (hvp report of the runs).

Options:
  --steps N       training steps of each run (default 150 for the built-in recipe; with another
                  --preset or with --epochs, whole epochs of the preset unless --steps is given)
  --seeds K       seeds --seed, --seed + 1, ..., each with both runs (default 1)
  --seed N        first seed (default 0)
  --runs LIST     hvp,random (default both); e.g. --runs random while tuning a recipe
  --holdout N     tuning: train on all but the training split's last N images and measure k-NN
                  on those N (the test split is not read); 0 = evaluate on the test split (default)
  --knn-train N   training images in the k-NN memory bank (default 5000; 0 = all)
  --knn-test N    images classified (default 5000; 0 = all)
  --knn-every N   k-NN monitor during training every N steps (built-in recipe: 25; 0 = off), on
                  the first --knn-bank (500) bank and --knn-queries (250) evaluation images
  --data DIR      Fashion-MNIST directory (default: Debian's dataset-fashion-mnist)
  --out DIR       output directory (default runs/demo)
  --preset NAME   the training recipe (default ${DEMO_PRESET}; study-cifar10 is the long
                  study for a GPU); any hvp pretrain setting overrides it, e.g. --views 8,
                  --method simclr --lr 0.1 --batch-size 128 --scale-min 0.3`;

/** Flags of the demo itself, with their defaults; every other flag is a training setting. */
const DEMO_FLAGS = {
  steps: '150',
  seeds: '1',
  seed: '0',
  runs: 'hvp,random',
  holdout: '0',
  'knn-train': '5000',
  'knn-test': '5000',
  out: 'runs/demo',
} as const;
/** The built-in recipe's logging and monitor settings in the demo (a sixth of an epoch: log often). */
const BUILT_IN_SETTINGS = { 'log-every': '10', 'knn-every': '25', 'knn-bank': '500', 'knn-queries': '250' };
type DemoFlag = keyof typeof DEMO_FLAGS;

function posInt(name: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

function parseRuns(v: string): RunName[] {
  const names = v.split(',').map((s) => s.trim());
  const out = names.map((n) => {
    const name = n === 'random' ? 'random_views' : n;
    if (!RUN_NAMES.includes(name as RunName)) throw new Error(`--runs: unknown run '${n}' (hvp, random)`);
    return name as RunName;
  });
  if (!out.length) throw new Error('--runs: name at least one run (hvp, random)');
  return RUN_NAMES.filter((n) => out.includes(n));
}

export interface DemoSettings {
  /** The preset the recipe starts from. */
  preset: string;
  base: TrainConfig;
  seeds: number[];
  runs: RunName[];
  holdout: number;
  knnTrain: number;
  knnTest: number;
  out: string;
}

/** The demo's settings from its flags: the recipe (preset plus setting flags) and the study's shape. */
export function demoSettings(argv: string[]): DemoSettings | null {
  const { values, preset, config, help } = flagValues(argv);
  if (help) return null;
  if (config) throw new Error('hvp demo takes --preset NAME and setting flags, not --config');
  const own = Object.fromEntries(Object.entries(DEMO_FLAGS).map(([k, d]) => [k, values[k] ?? d])) as Record<DemoFlag, string>;
  const settings = Object.fromEntries(Object.entries(values).filter(([k]) => !(k in DEMO_FLAGS)));
  // The Fashion-MNIST demo counts steps; another preset, or --epochs, trains whole epochs unless --steps is given.
  const builtIn = (preset ?? DEMO_PRESET) === DEMO_PRESET;
  const byEpochs = values.steps === undefined && (!builtIn || values.epochs !== undefined);
  const steps = byEpochs ? 0 : posInt('steps', own.steps);
  const first = posInt('seed', own.seed, 0);
  const recipe = applyValues(presetConfig(preset ?? DEMO_PRESET), { ...(builtIn ? BUILT_IN_SETTINGS : {}), ...settings }, 'flag');
  const base = validateConfig({ ...recipe, seed: first, maxSteps: steps });
  return {
    preset: preset ?? DEMO_PRESET,
    base,
    seeds: Array.from({ length: posInt('seeds', own.seeds) }, (_, i) => first + i),
    runs: parseRuns(own.runs),
    holdout: posInt('holdout', own.holdout, 0),
    knnTrain: posInt('knn-train', own['knn-train'], 0),
    knnTest: posInt('knn-test', own['knn-test'], 0),
    out: own.out,
  };
}

/** What changed from the preset, as flags: the recipe in one line. */
function recipeFlags(c: TrainConfig, preset: TrainConfig): string {
  const skip = new Set(['seed', 'maxSteps', 'knnEvery', 'knnBank', 'knnQueries', 'logEvery', 'out', 'epochs', 'select', 'views']);
  return Object.entries(c)
    .filter(([k, v]) => !skip.has(k) && JSON.stringify(v) !== JSON.stringify((preset as unknown as Record<string, unknown>)[k]))
    .map(([k, v]) => `--${kebabKey(k)} ${Array.isArray(v) ? v.join(',') : v}`)
    .join(' ');
}

export async function demoMain(argv: string[], given?: Engine): Promise<void> {
  const s = demoSettings(argv);
  if (!s) return console.log(DEMO_HELP);
  const engine = given ?? (await Engine.create());
  console.log(`adapter: ${engine.description}`);
  const open = (split: 'train' | 'test') => openDataset({ kind: s.base.dataset, dir: s.base.data || undefined, split, loadSize: s.base.loadSize });
  const trainSplit = await open('train');
  const testSplit = s.holdout > 0 ? trainSplit : await open('test');
  const sets = await evalSets(trainSplit, testSplit, { holdout: s.holdout, bank: s.knnTrain, queries: s.knnTest });
  const epochs = s.base.maxSteps > 0 ? Math.max(1, Math.ceil((s.base.maxSteps * s.base.batchSize) / sets.train.length)) : s.base.epochs;
  const base: TrainConfig = { ...s.base, epochs };
  await mkdir(s.out, { recursive: true });

  const perSeed: SeedResult[] = [];
  const seedDir = (seed: number) => (s.seeds.length === 1 ? s.out : join(s.out, `seed-${seed}`));
  for (const [i, seed] of s.seeds.entries()) {
    const label = s.seeds.length > 1 ? `seed ${seed} (${i + 1}/${s.seeds.length}): ` : '';
    const r = await runSeed(engine, base, { seed, dir: seedDir(seed), runs: s.runs, sets, label });
    perSeed.push(r);
  }
  const rawPixels = await knnTop1(engine, sets, 'raw_pixels', 'raw');
  if (s.seeds.length > 1) {
    for (const r of perSeed) {
      await writeJson(join(seedDir(r.seed), 'summary.json'), { ...r, knn: { raw_pixels: rawPixels, ...r.knn }, knn_train: sets.bank.length, knn_test: sets.queries.length });
    }
  }
  const spread = spreadByKey(perSeed.map((r) => r.knn));
  printTable(base, rawPixels, spread, perSeed);

  const hardness = meanHardness(perSeed.filter((r) => r.hardness.length).map((r) => r.hardness));
  if (hardness.length) {
    const first = hardness[0];
    const last = hardness[hardness.length - 1];
    console.log(
      `\nhardness gap (HVP: mean score of the trained combinations minus the mean over all candidates): ` +
        `${first.gap.toFixed(4)} at step ${first.step}, ${last.gap.toFixed(4)} at step ${last.step}`,
    );
  }
  const summary = {
    // Means over seeds, keyed as the report reads them.
    knn: { raw_pixels: rawPixels, ...Object.fromEntries(Object.entries(spread).map(([k, v]) => [k, v.mean])) },
    knn_std: Object.fromEntries(Object.entries(spread).map(([k, v]) => [k, v.std])),
    seeds: s.seeds,
    per_seed: perSeed.map(({ seed, knn, runs }) => ({ seed, knn, runs })),
    hardness_gap: { mean_over_seeds: hardness, per_seed: perSeed.map(({ seed, hardness: h }) => ({ seed, steps: h })) },
    preset: s.preset,
    recipe: recipeFlags(base, presetConfig(s.preset)),
    config: Object.fromEntries(Object.entries({ ...base, out: undefined, seed: undefined }).filter(([, v]) => v !== undefined)),
    evaluation: sets.description,
    steps: base.maxSteps,
    batch_size: base.batchSize,
    knn_train: sets.bank.length,
    knn_test: sets.queries.length,
    adapter: engine.description,
    // The first seed's run times (as before multi-seed summaries).
    runs: perSeed[0].runs,
  };
  await writeJson(join(s.out, 'summary.json'), summary);
  console.log(`\nwrote ${join(s.out, 'summary.json')}`);
  const runDirs = s.seeds.flatMap((seed) => s.runs.map((n) => join(seedDir(seed), RUN_DIRS[n])));
  const report = await writeReport(engine, runDirs, join(s.out, 'report.html'), { datasets: Object.fromEntries(runDirs.map((d) => [d, sets.train])) });
  console.log(`wrote ${report} (open it in a browser: curves, the hard pairs HVP chose, what makes them hard, the cost)`);
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value, null, 2) + '\n');
}

function printTable(c: TrainConfig, rawPixels: number, spread: Record<string, Spread>, perSeed: SeedResult[]): void {
  const method = { simsiam: 'SimSiam', simclr: 'SimCLR', dino: 'DINO', ibot: 'iBOT' }[c.method];
  const names: Record<string, string> = {
    random_init: 'random-init encoder',
    random_views: `${method}, random views`,
    hvp: `${method}, HVP (${c.select} of ${c.views} views)`,
  };
  const multi = perSeed.length > 1;
  const head = multi ? `| features | k-NN top-1 (mean ± std, ${perSeed.length} seeds) | ${perSeed.map((r) => `seed ${r.seed}`).join(' | ')} |` : '| features | k-NN top-1 |';
  console.log(`\n${head}\n|${' --- |'.repeat(multi ? perSeed.length + 2 : 2)}`);
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  console.log(multi ? `| raw pixels | ${pct(rawPixels)} |${' |'.repeat(perSeed.length)}` : `| raw pixels | ${pct(rawPixels)} |`);
  for (const [k, sp] of Object.entries(spread)) {
    const name = names[k] ?? k;
    console.log(multi ? `| ${name} | ${formatSpread(sp)}% | ${perSeed.map((r) => pct(r.knn[k])).join(' | ')} |` : `| ${name} | ${pct(sp.mean)} |`);
  }
}
