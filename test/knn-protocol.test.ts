// One k-NN protocol for every figure: the demo's table (cli/demo-study.ts), `hvp eval knn` and the
// float64 brute force must give the same top-1 on the same sets. Both splits are normalised by the
// train split's statistics; a test split with statistics of its own must not be normalised by them.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../engine/index.js';
import { evalMain } from '../cli/eval.js';
import { evalSets, knnTop1 } from '../cli/demo-study.js';
import { openDataset } from '../hvp/data/open.js';
import type { Dataset, Image } from '../hvp/data/types.js';
import { knnOnSplits } from '../hvp/eval/knn-splits.js';
import { engine } from './helpers.js';
import { idxDir, knnRef, memoryDataset } from './eval-ref.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Raw-pixel features of `ds` normalised by `stats`, float32 as the GPU path sees them. */
function pixels(ds: Dataset & { images: Image[] }, stats: Dataset): Float32Array {
  const out: number[] = [];
  for (const img of ds.images) {
    const plane = img.pixels.length / ds.channels;
    img.pixels.forEach((p, i) => out.push((p / 255 - stats.mean[Math.floor(i / plane)]) / stats.std[Math.floor(i / plane)]));
  }
  return Float32Array.from(out);
}

describe('one k-NN protocol', () => {
  it('the demo, hvp eval knn and a float64 k-NN agree on raw pixels of IDX splits', async () => {
    const e = await engine();
    const dir = await mkdtemp(join(tmpdir(), 'hvp-knn-'));
    dirs.push(dir);
    await idxDir(new Rng(3), dir);
    const data = ['--data', dir, '--dataset', 'fashion-mnist'];
    const evalRaw = (await evalMain(['knn', '--features', 'raw', ...data, '--k', '20', '--train-limit', '40', '--test-limit', '20'], e))!;
    const train = await openDataset({ kind: 'fashion-mnist', dir, split: 'train' });
    const test = await openDataset({ kind: 'fashion-mnist', dir, split: 'test' });
    expect(test.mean[0]).not.toBe(train.mean[0]);
    const sets = await evalSets(train, test, { holdout: 0, bank: 40, queries: 20 });
    expect(await knnTop1(e, sets, 'raw', 'raw')).toBe(evalRaw.top1);
  });

  it('the demo normalises the queries by the train statistics, as the float64 k-NN does', async () => {
    const e = await engine();
    const rng = new Rng(5);
    const train = memoryDataset(rng, 80, 1, 4, [6, 6]);
    const test = memoryDataset(rng, 60, 1, 4, [6, 6]);
    // The test split's own statistics differ from the train split's.
    Object.assign(test, { mean: [0.7], std: [0.1], name: 'memory/test' });
    const trainLabels = Int32Array.from(train.images, (im) => im.label);
    const testLabels = Int32Array.from(test.images, (im) => im.label);
    const ref = knnRef(pixels(train, train), trainLabels, pixels(test, train), testLabels, 36, { k: 20, temperature: 0.07, numClasses: 4, centre: true });
    const refTop1 = ref.predictions.filter((p, i) => p === testLabels[i]).length / testLabels.length;
    const sets = await evalSets(train, test, { holdout: 0, bank: 0, queries: 0 });
    expect(await knnTop1(e, sets, 'raw', 'raw')).toBeCloseTo(refTop1, 12);
    const shared = await knnOnSplits(e, 'raw', train, test);
    expect([...shared.predictions]).toEqual([...ref.predictions]);
    expect(shared.centre).toBe(true);
  });
});
