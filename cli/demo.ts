// `hvp demo` (what `npm start` runs): on Fashion-MNIST, pretrain SimSiam with HVP (V = 4, hardest
// pair) and the random-view baseline for the same number of steps from the same seed, then compare
// k-NN top-1 on the test split for raw pixels, the randomly initialised encoder, random views and HVP.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine, Rng, type Tensor } from '../engine/index.js';
import type { Backbone } from '../models/backbone.js';
import { firstN, openDataset, subset } from '../hvp/data/index.js';
import type { Dataset } from '../hvp/data/types.js';
import { extractFeatures, knnClassify, rawPixelFeatures } from '../hvp/eval/index.js';
import { buildBackbone, type StudentBackbone } from '../hvp/methods/backbone.js';
import { presetConfig, validateConfig, type TrainConfig } from '../hvp/train/config.js';
import { pretrain } from '../hvp/train/loop.js';
import { writeReport } from './report.js';

export const DEMO_HELP = `Usage: hvp demo [options]

Pretrains SimSiam on Fashion-MNIST twice from the same seed for the same number of steps, once with
Hard View Pretraining (4 views per image, the hardest pair trained on) and once on random view
pairs, then prints k-NN top-1 (k = 20, T = 0.07) on the test split for raw pixels, the randomly
initialised encoder and both pretrained encoders. Writes OUT/summary.json, both runs' logs and
checkpoints under OUT/hvp and OUT/random, and OUT/report.html (hvp report of both runs: curves with
the k-NN monitor, the hard-pair gallery, pair statistics, cost).

Options:
  --steps N       training steps of each run (default 150)
  --batch-size N  images per step (default 64)
  --views V       HVP candidate views per image (default 4)
  --widths LIST   ResNet-18 stage widths (default 8,16,32,64)
  --knn-train N   training images in the k-NN memory bank (default 5000; 0 = all 60000)
  --knn-test N    test images classified (default 5000; 10000 = the whole test split)
  --knn-every N   k-NN monitor during training every N steps (default 25; 0 = off), on the first
                  --knn-bank (default 500) train and --knn-queries (default 250) test images
                  (about 3% of the HVP run's time and 9% of the random-view run's)
  --data DIR      Fashion-MNIST directory (default: Debian's dataset-fashion-mnist)
  --seed N        random seed (default 0)
  --out DIR       output directory (default runs/demo)`;

function posInt(name: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

function asBackbone(net: StudentBackbone, channels: number): Backbone {
  return { module: net.module, features: (x: Tensor) => net.forward(x), featureDim: net.featureDim, inChannels: channels };
}

/** The first n images (0 or n >= length: all of them). */
function head(ds: Dataset, n: number): Dataset {
  return n > 0 && n < ds.length ? subset(ds, firstN(ds, n)) : ds;
}

export async function demoMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '150' },
      'batch-size': { type: 'string', default: '64' },
      views: { type: 'string', default: '4' },
      widths: { type: 'string', default: '8,16,32,64' },
      'knn-train': { type: 'string', default: '5000' },
      'knn-test': { type: 'string', default: '5000' },
      'knn-every': { type: 'string', default: '25' },
      'knn-bank': { type: 'string', default: '500' },
      'knn-queries': { type: 'string', default: '250' },
      data: { type: 'string', default: '' },
      seed: { type: 'string', default: '0' },
      out: { type: 'string', default: 'runs/demo' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return console.log(DEMO_HELP);
  const steps = posInt('steps', values.steps);
  const out = values.out!;
  const base: TrainConfig = {
    ...presetConfig('simsiam-fashion-mnist'),
    data: values.data!,
    seed: posInt('seed', values.seed, 0),
    batchSize: posInt('batch-size', values['batch-size'], 2),
    widths: values.widths!.split(',').map((w) => posInt('widths', w)),
    maxSteps: steps,
    logEvery: 10,
    knnEvery: posInt('knn-every', values['knn-every'], 0),
    knnBank: posInt('knn-bank', values['knn-bank'], 20),
    knnQueries: posInt('knn-queries', values['knn-queries']),
  };
  const engine = await Engine.create();
  console.log(`adapter: ${engine.description}`);
  const dir = values.data || undefined;
  const train = await openDataset({ kind: 'fashion-mnist', dir, split: 'train' });
  const test = await openDataset({ kind: 'fashion-mnist', dir, split: 'test' });
  base.epochs = Math.max(1, Math.ceil((steps * base.batchSize) / train.length));
  await mkdir(out, { recursive: true });

  const runs: Record<string, { seconds: number; imagesPerSecond: number; lastLoss: number }> = {};
  const encoders: Record<string, Backbone> = {};
  for (const [name, select, views] of [
    ['hvp', 'hardest', posInt('views', values.views, 2)],
    ['random_views', 'random', 2],
  ] as const) {
    const config = validateConfig({ ...base, select, views, out: join(out, name === 'hvp' ? 'hvp' : 'random') });
    console.log(`\n== pretraining: SimSiam, ${name === 'hvp' ? `HVP with ${views} views (hardest pair)` : 'random view pairs'}, ${steps} steps of ${base.batchSize}`);
    const t0 = performance.now();
    const r = await pretrain(config, { engine, dataset: train, knnSets: { bank: train, queries: test } });
    runs[name] = { seconds: (performance.now() - t0) / 1000, imagesPerSecond: r.imagesPerSecond, lastLoss: r.losses[r.losses.length - 1] };
    encoders[name] = asBackbone(r.method.backbone, train.channels);
  }
  // The encoder both runs started from: the same seed draws the same initial weights.
  encoders.random_init = asBackbone(buildBackbone(engine, base, train.channels, new Rng(base.seed)), train.channels);

  const bank = head(train, posInt('knn-train', values['knn-train'], 0));
  const queries = head(test, posInt('knn-test', values['knn-test'], 1));
  const labels = async (ds: Dataset) => Int32Array.from(await Promise.all(Array.from({ length: ds.length }, async (_, i) => (await ds.read(i)).label)));
  const bankLabels = await labels(bank);
  const queryLabels = await labels(queries);
  console.log(`\n== k-NN (k = 20, T = 0.07): ${bank.length} training images as the memory bank, ${queries.length} test images`);
  const knn: Record<string, number> = {};
  for (const name of ['raw_pixels', 'random_init', 'random_views', 'hvp']) {
    const top1 = await engine.scopeAsync(async () => {
      const feats = (ds: Dataset) =>
        name === 'raw_pixels' ? rawPixelFeatures(engine, ds) : extractFeatures(engine, encoders[name], ds, { batch: 256, progress: `${name} ${ds.name}` });
      const trainF = await feats(bank);
      const testF = await feats(queries);
      const r = await knnClassify(engine, { features: trainF, labels: bankLabels }, { features: testF, labels: queryLabels }, {
        k: 20,
        temperature: 0.07,
        numClasses: train.classes.length,
        centre: name === 'raw_pixels',
      });
      return r.top1;
    });
    knn[name] = top1;
  }
  printTable(knn);
  const summary = { knn, runs, steps, batch_size: base.batchSize, knn_train: bank.length, knn_test: queries.length, adapter: engine.description };
  await writeFile(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(`\nwrote ${join(out, 'summary.json')}`);
  const runDirs = [join(out, 'hvp'), join(out, 'random')];
  const report = await writeReport(engine, runDirs, join(out, 'report.html'), { datasets: Object.fromEntries(runDirs.map((d) => [d, train])) });
  console.log(`wrote ${report} (open it in a browser: curves, the hard pairs HVP chose, what makes them hard, the cost)`);
}

function printTable(knn: Record<string, number>): void {
  const names: Record<string, string> = {
    raw_pixels: 'raw pixels',
    random_init: 'random-init encoder',
    random_views: 'SimSiam, random views',
    hvp: 'SimSiam, HVP (hardest of 4 views)',
  };
  console.log('\n| features | k-NN top-1 |\n| --- | --- |');
  for (const [k, v] of Object.entries(knn)) console.log(`| ${names[k]} | ${(100 * v).toFixed(2)}% |`);
}
