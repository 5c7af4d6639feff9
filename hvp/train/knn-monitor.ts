// The k-NN monitor: every --knn-every steps, k-NN top-1 (k = 20, T = 0.07, as `hvp eval knn`) of the
// student backbone in eval mode on a fixed memory bank (the first --knn-bank training images) and
// query set (the first --knn-queries test images), logged as {"event":"knn"} records. It draws no
// random numbers and updates no state (eval-mode batch norm reads its running statistics), so a run
// trains the same weights with the monitor on or off, and a resumed run continues the same curve.

import type { Engine } from '../../engine/index.js';
import type { Backbone } from '../../models/backbone.js';
import { firstN, hasLabels, openDataset, subset } from '../data/index.js';
import type { Dataset } from '../data/types.js';
import { knnOnSplits, type Stats } from '../eval/index.js';
import type { StudentBackbone } from '../methods/backbone.js';
import type { Method } from '../methods/method.js';
import type { TrainConfig } from './config.js';
import type { JsonLog } from './log.js';

export const MONITOR_K = 20;
export const MONITOR_TEMPERATURE = 0.07;

/** The k-NN monitor's bank and query images. */
export interface KnnSets {
  bank: Dataset;
  queries: Dataset;
}

/** The first n images of `ds` (all of them when it has fewer). */
function head(ds: Dataset, n: number): Dataset {
  return n < ds.length ? subset(ds, firstN(ds, n)) : ds;
}

async function labelsOf(ds: Dataset): Promise<Int32Array> {
  if (hasLabels(ds)) return Int32Array.from(ds.labels);
  return Int32Array.from(await Promise.all(Array.from({ length: ds.length }, async (_, i) => (await ds.read(i)).label)));
}

/** A training method's student backbone as the evaluators take it. */
export function evalBackbone(net: StudentBackbone, channels: number): Backbone {
  return { module: net.module, features: (x) => net.forward(x), featureDim: net.featureDim, inChannels: channels };
}

/**
 * k-NN top-1 of `backbone` classifying `sets.queries` against `sets.bank`, both normalised by `stats`
 * (the training data's, as `hvp eval knn` normalises both splits by the train split's).
 */
export async function knnTop1(engine: Engine, backbone: Backbone, sets: KnnSets, stats: Stats, labels?: { bank: Int32Array; queries: Int32Array }): Promise<number> {
  const bankLabels = labels?.bank ?? (await labelsOf(sets.bank));
  const queryLabels = labels?.queries ?? (await labelsOf(sets.queries));
  return engine.scopeAsync(async () => {
    const r = await knnOnSplits(engine, backbone, sets.bank, sets.queries, {
      stats,
      k: MONITOR_K,
      temperature: MONITOR_TEMPERATURE,
      trainLabels: bankLabels,
      testLabels: queryLabels,
    });
    return r.top1;
  });
}

/** k-NN accuracy of the backbone during training (--knn-every), on fixed bank and query images. */
export class KnnMonitor {
  private constructor(
    private readonly engine: Engine,
    private readonly every: number,
    private readonly sets: KnnSets,
    private readonly labels: { bank: Int32Array; queries: Int32Array },
    private readonly stats: Stats,
  ) {}

  /** The bank from `train` (the run's training images) and the queries from `given` or the configured data's test split. */
  static async create(engine: Engine, c: TrainConfig, train: Dataset, given?: KnnSets): Promise<KnnMonitor> {
    let queries = given?.queries;
    if (!queries) {
      try {
        queries = await openDataset({ kind: c.dataset, dir: c.data || undefined, split: 'test', loadSize: c.loadSize });
      } catch (e) {
        throw new Error(`the k-NN monitor needs the data's test split: ${(e as Error).message} (or turn it off with --knn-every 0)`);
      }
    }
    const sets = { bank: head(given?.bank ?? train, c.knnBank), queries: head(queries, c.knnQueries) };
    if (sets.bank.length < MONITOR_K) throw new Error(`the k-NN monitor needs at least ${MONITOR_K} bank images, ${sets.bank.name} has ${sets.bank.length}`);
    if (sets.bank.channels !== train.channels || sets.queries.channels !== train.channels) {
      throw new Error(`k-NN monitor: bank ${sets.bank.name} and queries ${sets.queries.name} must have the training data's ${train.channels} channels`);
    }
    const labels = { bank: await labelsOf(sets.bank), queries: await labelsOf(sets.queries) };
    return new KnnMonitor(engine, c.knnEvery, sets, labels, { mean: train.mean, std: train.std });
  }

  /** After `step` completed steps: every `every` steps and after the last. */
  due(step: number, totalSteps: number): boolean {
    return step % this.every === 0 || step === totalSteps;
  }

  /** Log top-1 of the method's backbone after `step` completed steps. */
  async run(method: Method, step: number, log: JsonLog): Promise<number> {
    const t0 = performance.now();
    const top1 = await knnTop1(this.engine, evalBackbone(method.backbone, this.sets.bank.channels), this.sets, this.stats, this.labels);
    log.write({ event: 'knn', step, top1, k: MONITOR_K, bank: this.sets.bank.length, queries: this.sets.queries.length, ms: Math.round(performance.now() - t0) });
    return top1;
  }
}
