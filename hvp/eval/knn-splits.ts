// The one k-NN protocol of `hvp eval knn`, the demo's table and the training monitor: features of a
// train (memory bank) and a test split, BOTH normalised by the train split's per-channel statistics
// (as in training; a split's own statistics would shift the test features against the bank's), then
// weighted k-NN (hvp/eval/knn.ts). Raw pixels are centred by the train features' mean by default.

import type { Engine, Tensor } from '../../engine/index.js';
import type { Backbone } from '../../models/backbone.js';
import { hasLabels } from '../data/open.js';
import type { Dataset } from '../data/types.js';
import { extractFeatures, rawPixelFeatures, type Stats } from './features.js';
import { knnClassify, type KnnResult } from './knn.js';
import { disposeRows } from './rows.js';

/** Where features come from: a frozen backbone, or the normalised pixels themselves. */
export type FeatureSource = Backbone | 'raw';

/** How splitFeatures normalises and batches the two splits. */
export interface SplitFeatureOptions {
  /** Statistics both splits are normalised by (default: the train split's). */
  stats?: Stats;
  /** Backbone images per forward (extractFeatures' default when absent). */
  batch?: number;
  /** Backbone input size (extractFeatures' `size`). */
  size?: number;
  /** Prefix of a progress bar per split on stderr (none when absent). */
  progress?: string;
}

/** Features of `train` and `test` from `source`, both normalised by `opts.stats` (default the train split's). */
export async function splitFeatures(
  engine: Engine,
  source: FeatureSource,
  train: Dataset,
  test: Dataset,
  opts: SplitFeatureOptions = {},
): Promise<{ train: Tensor[]; test: Tensor[] }> {
  const normalize = opts.stats ?? train;
  const of = (ds: Dataset) => {
    const progress = opts.progress === undefined ? undefined : `${opts.progress} ${ds.name}`;
    return source === 'raw'
      ? rawPixelFeatures(engine, ds, { progress, normalize })
      : extractFeatures(engine, source, ds, { batch: opts.batch, size: opts.size, progress, normalize });
  };
  const trainF = await of(train);
  try {
    return { train: trainF, test: await of(test) };
  } catch (e) {
    disposeRows(trainF);
    throw e;
  }
}

/** Labels of every image of `ds` (without decoding when the data set knows them). */
export async function datasetLabels(ds: Dataset): Promise<Int32Array> {
  if (hasLabels(ds)) return Int32Array.from(ds.labels);
  return Int32Array.from(await Promise.all(Array.from({ length: ds.length }, async (_, i) => (await ds.read(i)).label)));
}

/** k-NN on two splits: the neighbours (k, default 20) and the vote's temperature (default 0.07), besides the features' options. */
export interface SplitKnnOptions extends SplitFeatureOptions {
  k?: number;
  temperature?: number;
  /** Subtract the train features' mean first (default: yes for raw pixels, no for a backbone). */
  centre?: boolean;
  /** Labels already read (default: read from the data sets). */
  trainLabels?: Int32Array;
  testLabels?: Int32Array;
  /** Label of a progress bar over the k-NN's test rows. */
  knnProgress?: string;
}

/** Weighted k-NN top-1 (k 20, T 0.07 by default) of `test` against `train` on features from `source`. */
export async function knnOnSplits(
  engine: Engine,
  source: FeatureSource,
  train: Dataset,
  test: Dataset,
  opts: SplitKnnOptions = {},
): Promise<KnnResult & { centre: boolean }> {
  const centre = opts.centre ?? source === 'raw';
  const trainLabels = opts.trainLabels ?? (await datasetLabels(train));
  const testLabels = opts.testLabels ?? (await datasetLabels(test));
  const f = await splitFeatures(engine, source, train, test, opts);
  try {
    const r = await knnClassify(engine, { features: f.train, labels: trainLabels }, { features: f.test, labels: testLabels }, {
      k: opts.k,
      temperature: opts.temperature,
      numClasses: train.classes.length,
      centre,
      progress: opts.knnProgress,
    });
    return { ...r, centre };
  } finally {
    disposeRows(f.train);
    disposeRows(f.test);
  }
}
