// `hvp eval knn|linear`: k-NN or linear-probe top-1 of a frozen backbone (or of raw pixels, or of a
// randomly initialised backbone) on a labelled data set's train and test splits (docs/method.md §6).

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/index.js';
import { BACKBONE_ARCHS, parseArch, type Backbone } from '../models/backbone.js';
import { firstN, hasLabels, openDataset, subset, type DatasetKind } from '../hvp/data/open.js';
import type { Dataset } from '../hvp/data/types.js';
import { knnOnSplits, splitFeatures, type FeatureSource, type SplitFeatureOptions } from '../hvp/eval/knn-splits.js';
import { linearProbe } from '../hvp/eval/linear-probe.js';
import { loadBackbone, randomBackbone } from '../hvp/eval/backbone.js';
import { disposeRows } from '../hvp/eval/rows.js';
import { resizeEdge } from '../hvp/eval/resize.js';

/** Input size for folders of mixed-size images when --size is not given (ImageNet's). */
const DEFAULT_FOLDER_SIZE = 224;

export const EVAL_HELP = `Usage: hvp eval knn|linear (--checkpoint CKPT | --features raw | --random-init --arch A) [options]

Top-1 accuracy of frozen features on the test split: weighted k-NN (k nearest train samples by cosine
similarity vote with weight exp(sim / T)) or a linear classifier trained on the train split's features.

Features
  --checkpoint FILE   safetensors checkpoint (ours, or a torchvision / DINO export)
  --prefix P          use the tensors named P<name> (default 'backbone.' when present, else none)
  --arch A            ${BACKBONE_ARCHS.join(' | ')} (default: the checkpoint's metadata)
  --features F        backbone (default) | raw: the normalised pixels themselves
  --random-init       a randomly initialised backbone (needs --arch), the untrained baseline
  --small-image       random init: 3×3 stride-1 ResNet stem without max-pool (28-32 px images)
  --widths W          random init: ResNet stage widths, e.g. 64,128,256,512
  --patch-size N      random init: ViT patch size (16, 8 or 4)
  --seed N            random init and linear-probe seed (default 0)

Data
  --data DIR          data directory (default: the built-in Fashion-MNIST)
  --dataset KIND      auto (default) | fashion-mnist | mnist | cifar10 | folder
  --size N            input size: shorter side resized to N / 0.875, then a centre crop of N × N
                      (default: the images' own size; 224 for folders of mixed sizes)
  --train-limit N     use the first N train images (default all)
  --test-limit M      use the first M test images (default all)
  --batch N           images per forward (default 128)

k-NN
  --k N               neighbours (default 20, at most 64)
  --temperature T     vote temperature (default 0.07)
  --centre yes|no     subtract the train features' mean first (default: yes for raw pixels, else no)

Linear probe
  --epochs N          (default 100)
  --lr X              SGD learning rate, momentum 0.9, cosine decay (default 0.1)
  --weight-decay X    (default 0)
  --probe-batch N     mini-batch size (default 256)

  --out FILE          also write the result as JSON`;

const OPTIONS = {
  checkpoint: { type: 'string' },
  prefix: { type: 'string' },
  arch: { type: 'string' },
  features: { type: 'string', default: 'backbone' },
  'random-init': { type: 'boolean', default: false },
  'small-image': { type: 'boolean', default: false },
  widths: { type: 'string' },
  'patch-size': { type: 'string' },
  seed: { type: 'string', default: '0' },
  data: { type: 'string' },
  dataset: { type: 'string', default: 'auto' },
  size: { type: 'string' },
  'train-limit': { type: 'string' },
  'test-limit': { type: 'string' },
  batch: { type: 'string', default: '128' },
  k: { type: 'string', default: '20' },
  temperature: { type: 'string', default: '0.07' },
  centre: { type: 'string' },
  epochs: { type: 'string', default: '100' },
  lr: { type: 'string', default: '0.1' },
  'weight-decay': { type: 'string', default: '0' },
  'probe-batch': { type: 'string', default: '256' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a positive number, got '${v}'`);
  return n;
}

function nonNegative(name: string, v: string): number {
  const n = Number(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a number >= 0, got '${v}'`);
  return n;
}

const KINDS = ['auto', 'fashion-mnist', 'mnist', 'cifar10', 'folder'];

async function openSplit(v: Values, split: 'train' | 'test', limit: number | undefined): Promise<Dataset> {
  if (!KINDS.includes(v.dataset!)) throw new Error(`--dataset must be one of ${KINDS.join(', ')}, got '${v.dataset}'`);
  // Folders decode straight to the resize edge, so the CPU resize before the crop is (nearly) the identity.
  const loadSize = resizeEdge(int('size', v.size, 1) ?? DEFAULT_FOLDER_SIZE);
  const ds = await openDataset({ kind: v.dataset as DatasetKind | 'auto', dir: v.data, split, loadSize });
  return limit === undefined || limit >= ds.length ? ds : subset(ds, firstN(ds, limit));
}

async function labelsOf(ds: Dataset): Promise<Int32Array> {
  if (hasLabels(ds)) return Int32Array.from(ds.labels);
  const out = new Int32Array(ds.length);
  for (let i = 0; i < ds.length; i++) out[i] = (await ds.read(i)).label;
  return out;
}

interface Source {
  kind: 'backbone' | 'raw' | 'random-init';
  backbone?: Backbone;
  arch?: string;
  prefix?: string;
}

async function featureSource(engine: Engine, v: Values, channels: number): Promise<Source> {
  if (v.features !== 'backbone' && v.features !== 'raw') throw new Error(`--features must be backbone or raw, got '${v.features}'`);
  const chosen = [v.features === 'raw', v['random-init'], v.checkpoint !== undefined].filter(Boolean).length;
  if (chosen !== 1) throw new Error('give exactly one of --checkpoint FILE, --features raw and --random-init (see hvp eval --help)');
  if (v.features === 'raw') return { kind: 'raw' };
  if (v['random-init']) {
    if (!v.arch) throw new Error('--random-init needs --arch (and --small-image / --widths / --patch-size to match the trained model)');
    const arch = parseArch(v.arch);
    const widths = v.widths?.split(',').map((w) => int('widths', w.trim(), 1)!);
    const patch = int('patch-size', v['patch-size'], 1);
    if (patch !== undefined && patch !== 16 && patch !== 8 && patch !== 4) throw new Error(`--patch-size must be 16, 8 or 4, got ${patch}`);
    const opts = { inChannels: channels, smallImage: v['small-image'], widths, patchSize: patch as 16 | 8 | 4 | undefined, imgSize: int('size', v.size, 1) };
    return { kind: 'random-init', backbone: randomBackbone(engine, arch, opts, int('seed', v.seed, 0)!), arch };
  }
  const loaded = await loadBackbone(engine, { checkpoint: v.checkpoint!, prefix: v.prefix, arch: v.arch });
  return { kind: 'backbone', backbone: loaded.backbone, arch: loaded.arch, prefix: loaded.prefix };
}

/** The features' source and how a backbone reads the images (both splits normalised by the train split's statistics). */
function sourceOf(src: Source, v: Values): { source: FeatureSource; opts: SplitFeatureOptions } {
  const opts = { batch: int('batch', v.batch, 1), size: int('size', v.size, 1), progress: 'features' };
  return { source: src.kind === 'raw' ? 'raw' : src.backbone!, opts };
}

export async function evalMain(argv: string[], engine?: Engine): Promise<Record<string, unknown> | void> {
  const { values: v, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  if (v.help) return console.log(EVAL_HELP);
  const method = positionals[0];
  if (positionals.length !== 1 || (method !== 'knn' && method !== 'linear')) {
    throw new Error(`expected 'hvp eval knn' or 'hvp eval linear', got '${positionals.join(' ')}' (see hvp eval --help)`);
  }
  if (v.centre !== undefined && v.centre !== 'yes' && v.centre !== 'no') throw new Error(`--centre must be yes or no, got '${v.centre}'`);
  const train = await openSplit(v, 'train', int('train-limit', v['train-limit'], 1));
  const test = await openSplit(v, 'test', int('test-limit', v['test-limit'], 1));
  const own = !engine;
  const e = engine ?? (await Engine.create());
  const start = performance.now();
  try {
    const src = await featureSource(e, v, train.channels);
    if (src.backbone && src.backbone.inChannels !== train.channels) {
      throw new Error(`${train.name} has ${train.channels}-channel images but the ${src.arch} backbone takes ${src.backbone.inChannels} channels: pass data that matches the checkpoint`);
    }
    const [trainLabels, testLabels] = await Promise.all([labelsOf(train), labelsOf(test)]);
    const numClasses = train.classes.length;
    const result: Record<string, unknown> = {
      method,
      features: src.kind,
      checkpoint: v.checkpoint ?? null,
      ...(src.arch ? { arch: src.arch } : {}),
      ...(src.prefix !== undefined ? { prefix: src.prefix } : {}),
      dataset: train.name,
      train: train.length,
      test: test.length,
    };
    const { source, opts: featureOpts } = sourceOf(src, v);
    if (method === 'knn') {
      const k = int('k', v.k, 1)!;
      const temperature = positive('temperature', v.temperature!);
      const centre = v.centre === undefined ? undefined : v.centre === 'yes';
      const r = await knnOnSplits(e, source, train, test, { ...featureOpts, k, temperature, centre, trainLabels, testLabels, knnProgress: 'k-NN' });
      Object.assign(result, { top1: r.top1, ...(r.top5 !== undefined ? { top5: r.top5 } : {}), k, temperature, centre: r.centre });
    } else {
      const opts = {
        numClasses,
        epochs: int('epochs', v.epochs, 1)!,
        lr: positive('lr', v.lr!),
        weightDecay: nonNegative('weight-decay', v['weight-decay']!),
        batch: int('probe-batch', v['probe-batch'], 1)!,
        seed: int('seed', v.seed, 0)!,
      };
      const f = await splitFeatures(e, source, train, test, featureOpts);
      try {
        const r = await linearProbe(e, f.train, trainLabels, f.test, testLabels, opts);
        Object.assign(result, { top1: r.top1, train_top1: r.trainTop1, epochs: opts.epochs, lr: opts.lr, weight_decay: opts.weightDecay, batch: opts.batch, seed: opts.seed });
      } finally {
        disposeRows(f.train);
        disposeRows(f.test);
      }
    }
    result.seconds = Math.round((performance.now() - start) / 100) / 10;
    console.log(`${method} top-1: ${(100 * (result.top1 as number)).toFixed(2)}% (${train.length} train, ${test.length} test images, ${result.seconds} s)`);
    if (v.out) {
      await writeFile(v.out, JSON.stringify(result, null, 2) + '\n');
      console.log(`wrote ${v.out}`);
    }
    return result;
  } finally {
    if (own) e.destroy();
  }
}
