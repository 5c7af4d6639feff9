// The demo's study, one seed at a time: pretrain the requested runs (HVP and random views) from the
// same seed for the same steps, then k-NN top-1 of raw pixels, the seed's random-init encoder and each
// pretrained encoder on the evaluation split (the test split, or a held-out part of the training split
// while tuning a recipe).

import { join } from 'node:path';
import { Rng, type Engine, type Tensor } from '../engine/index.js';
import type { Backbone } from '../models/backbone.js';
import { firstN, subset } from '../hvp/data/index.js';
import type { Dataset } from '../hvp/data/types.js';
import { knnOnSplits } from '../hvp/eval/index.js';
import { buildBackbone, type StudentBackbone } from '../hvp/methods/backbone.js';
import { disposeMethod, type Method } from '../hvp/methods/method.js';
import { hardnessGap, type HardnessPoint } from '../hvp/report/study.js';
import { readRun } from '../hvp/report/index.js';
import { validateConfig, type TrainConfig } from '../hvp/train/config.js';
import { pretrain } from '../hvp/train/loop.js';
import { signalExitCode, stoppedMessage } from '../hvp/train/stop.js';

export type RunName = 'hvp' | 'random_views';
export const RUN_NAMES: readonly RunName[] = ['hvp', 'random_views'];
/** Directory of each run inside a seed's directory. */
export const RUN_DIRS: Record<RunName, string> = { hvp: 'hvp', random_views: 'random' };

export interface EvalSets {
  /** Images trained on (the whole training split, or all but the held-out part). */
  train: Dataset;
  /** k-NN memory bank (a head of `train`) and the images classified. */
  bank: Dataset;
  queries: Dataset;
  /** Their labels, read once for every k-NN of the study. */
  bankLabels: Int32Array;
  queryLabels: Int32Array;
  /** 'test' or 'held-out N of train'. */
  description: string;
}

/** The training, bank and query sets: the test split, or with `holdout` > 0 the training split's last `holdout` images. */
export async function evalSets(trainSplit: Dataset, testSplit: Dataset, opts: { holdout: number; bank: number; queries: number }): Promise<EvalSets> {
  const head = (ds: Dataset, n: number) => (n > 0 && n < ds.length ? subset(ds, firstN(ds, n)) : ds);
  let train = trainSplit;
  let queries = head(testSplit, opts.queries);
  let description = 'test split';
  if (opts.holdout > 0) {
    if (opts.holdout >= trainSplit.length) throw new Error(`--holdout ${opts.holdout} leaves nothing to train on (${trainSplit.name} has ${trainSplit.length} images)`);
    const keep = trainSplit.length - opts.holdout;
    train = subset(trainSplit, firstN(trainSplit, keep), `${trainSplit.name}[:${keep}]`);
    queries = head(subset(trainSplit, Array.from({ length: opts.holdout }, (_, i) => keep + i), `${trainSplit.name}[${keep}:]`), opts.queries);
    description = `held-out last ${opts.holdout} of the training split`;
  }
  const bank = head(train, opts.bank);
  return { train, bank, queries, bankLabels: await labelsOf(bank), queryLabels: await labelsOf(queries), description };
}

export interface SeedResult {
  seed: number;
  /** k-NN top-1 per feature set: random_init and each run made (raw pixels are seed-free, measured once). */
  knn: Record<string, number>;
  runs: Record<string, { seconds: number; imagesPerSecond: number; lastLoss: number }>;
  /** The HVP run's hardness gap at each logged step. */
  hardness: HardnessPoint[];
}

function asBackbone(net: StudentBackbone, channels: number): Backbone {
  return { module: net.module, features: (x: Tensor) => net.forward(x), featureDim: net.featureDim, inChannels: channels };
}

async function labelsOf(ds: Dataset): Promise<Int32Array> {
  return Int32Array.from(await Promise.all(Array.from({ length: ds.length }, async (_, i) => (await ds.read(i)).label)));
}

/**
 * k-NN top-1 (k 20, T 0.07) of `encoder` on `sets`: `hvp eval knn`'s protocol (hvp/eval/knn-splits.ts),
 * both sets normalised by the training data's statistics, raw pixels centred.
 */
export async function knnTop1(engine: Engine, sets: EvalSets, name: string, encoder: Backbone | 'raw'): Promise<number> {
  const r = await knnOnSplits(engine, encoder, sets.bank, sets.queries, {
    batch: 256,
    progress: encoder === 'raw' ? undefined : name,
    trainLabels: sets.bankLabels,
    testLabels: sets.queryLabels,
  });
  return r.top1;
}

/**
 * Pretrain each of `runs` for one seed under `dir` (dir/hvp, dir/random) and measure k-NN top-1 of
 * the seed's random-init encoder and of every pretrained encoder.
 */
export async function runSeed(
  engine: Engine,
  base: TrainConfig,
  opts: { seed: number; dir: string; runs: readonly RunName[]; sets: EvalSets; label: string },
): Promise<SeedResult> {
  const { sets } = opts;
  const seeded: TrainConfig = { ...base, seed: opts.seed };
  const result: SeedResult = { seed: opts.seed, knn: {}, runs: {}, hardness: [] };
  const encoders: Record<string, Backbone> = {};
  // Freed after the k-NN: the study's seeds run one after another on one engine.
  const methods: Method[] = [];
  for (const name of opts.runs) {
    const hvp = name === 'hvp';
    const out = join(opts.dir, RUN_DIRS[name]);
    const config = validateConfig({ ...seeded, select: hvp ? base.select : 'random', views: hvp ? base.views : 2, out });
    console.log(`\n== ${opts.label}pretraining: ${hvp ? `HVP with ${config.views} views (${config.select} combination)` : 'random view pairs'}, ${config.maxSteps > 0 ? `${config.maxSteps} steps` : `${config.epochs} epochs`} of ${config.batchSize}, seed ${opts.seed}`);
    const t0 = performance.now();
    const r = await pretrain(config, { engine, dataset: sets.train, knnSets: { bank: sets.bank, queries: sets.queries } });
    // SIGINT or SIGTERM ends the whole study, not only this run: its checkpoint is saved, nothing more is trained or evaluated.
    if (r.signal) {
      console.error(stoppedMessage(r.signal, r.step, r.checkpoint, out));
      process.exit(signalExitCode(r.signal));
    }
    result.runs[name] = { seconds: (performance.now() - t0) / 1000, imagesPerSecond: r.imagesPerSecond, lastLoss: r.losses[r.losses.length - 1] };
    methods.push(r.method);
    encoders[name] = asBackbone(r.method.backbone, sets.train.channels);
    if (hvp) result.hardness = hardnessGap((await readRun(out)).steps);
  }
  // The encoder the seed's runs started from: the same seed draws the same initial weights.
  const randomInit = buildBackbone(engine, seeded, sets.train.channels, new Rng(opts.seed));
  encoders.random_init = asBackbone(randomInit, sets.train.channels);
  console.log(`\n== ${opts.label}k-NN (k = 20, T = 0.07): ${sets.bank.length} training images as the memory bank, ${sets.queries.length} images of the ${sets.description}`);
  for (const name of ['random_init', ...opts.runs]) result.knn[name] = await knnTop1(engine, sets, name, encoders[name]);
  randomInit.module.dispose();
  for (const m of methods) disposeMethod(m);
  return result;
}
