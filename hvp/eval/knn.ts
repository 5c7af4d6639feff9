// Weighted k-NN classification of frozen features (docs/method.md §6, DINO's eval_knn): L2-normalised features
// (after subtracting the train mean when `centre`), cosine similarity, the k most similar train samples
// vote with weight exp(sim / T), the class with the largest vote wins (ties to the lowest class).
// On the GPU: test rows in blocks, each block's similarities to one train block at a time (a matmul),
// folded into a running top-k per row (knn-topk.wgsl), then the vote (knn-vote.wgsl).
// Only the predictions and the true labels' ranks come back.

import { defineKernel, ops, type Engine, type Tensor } from '../../engine/index.js';
import { Progress } from '../progress.js';
import { BLOCK_BYTES, columnStats, disposeRows, featureShape, mapBlocks, rowBlocks, type FeatureRows } from './rows.js';
import topkSource from './knn-topk.wgsl';
import voteSource from './knn-vote.wgsl';

/** Feature rows and their labels. */
export interface KnnSplit {
  features: FeatureRows;
  labels: Int32Array;
}

/** Classes, k, temperature and centring of the weighted k-NN. */
export interface KnnOptions {
  numClasses: number;
  k?: number;
  temperature?: number;
  /** Subtract the train features' mean before normalising. */
  centre?: boolean;
  /** Label of a progress bar on stderr over the test rows (none when absent). */
  progress?: string;
}

/** k-NN accuracies and each test row's prediction. */
export interface KnnResult {
  top1: number;
  /** Only when there are more than 5 classes. */
  top5?: number;
  predictions: Int32Array;
}

/** Most neighbours a row keeps: each invocation holds its list in private memory. */
export const MAX_K = 64;

/**
 * PER_THREAD: one invocation per row; otherwise one workgroup per row, whose size must be at least
 * MAX_K and a power of two (see the shader).
 */
const topkKernel = defineKernel({
  name: 'knn_topk',
  source: topkSource,
  workgroupSize: MAX_K,
  uniforms: {
    rows: 'u32',
    cols: 'u32',
    col_base: 'u32', // train index of the block's first column
    init: 'u32', // 1: nothing kept yet (first train block)
  },
  inputs: { sim: 'f32' },
  outputs: { top_v: 'f32', top_i: 'i32' },
});

/** One invocation per test row. */
const voteKernel = defineKernel({
  name: 'knn_vote',
  source: voteSource,
  workgroupSize: 64,
  uniforms: {
    rows: 'u32',
    label_off: 'u32', // offset of this block's first test label
    out_off: 'u32', // offset of this block's first prediction
    inv_t: 'f32',
  },
  inputs: { top_v: 'f32', top_i: 'i32', train_labels: 'i32', test_labels: 'i32' },
  outputs: { pred: 'i32', rank: 'i32' },
});

/** Weighted k-NN classification of `test` by `train` features on the GPU (docs/method.md §6). */
export async function knnClassify(engine: Engine, train: KnnSplit, test: KnnSplit, opts: KnnOptions): Promise<KnnResult> {
  const { k = 20, temperature = 0.07, numClasses, centre = false } = opts;
  const tr = featureShape('knnClassify (train)', train.features);
  const te = featureShape('knnClassify (test)', test.features);
  checkArgs(tr, te, train.labels, test.labels, k, temperature, numClasses);

  const trainLabels = engine.tensor(train.labels, [tr.rows], { dtype: 'i32' });
  const testLabels = engine.tensor(test.labels, [te.rows], { dtype: 'i32' });
  const pred = engine.empty([te.rows], 'i32');
  const rank = engine.empty([te.rows], 'i32');
  const { trainN, testN } = normalise(engine, train.features, test.features, centre);
  try {
    let row = 0;
    const widest = Math.max(...trainN.map((b) => b.shape[0]));
    const progress = opts.progress ? new Progress(opts.progress, te.rows, 'row') : null;
    for (const block of testBlocks(testN, widest)) {
      engine.scope(() => {
        const { values, indices } = nearestNeighbours(trainN, block, k);
        vote(values, indices, trainLabels, testLabels, pred, rank, row, 1 / temperature);
      });
      row += block.shape[0];
      if (progress) {
        await engine.sync();
        progress.update(row);
      }
    }
    progress?.done();
    const [p, r] = await Promise.all([pred.toArray(), rank.toArray()]);
    const predictions = Int32Array.from(p);
    let hit1 = 0;
    let hit5 = 0;
    for (let i = 0; i < te.rows; i++) {
      if (predictions[i] === test.labels[i]) hit1++;
      if (r[i] < 5) hit5++;
    }
    return { top1: hit1 / te.rows, ...(numClasses > 5 ? { top5: hit5 / te.rows } : {}), predictions };
  } finally {
    for (const t of [trainLabels, testLabels, pred, rank]) t.dispose();
    disposeRows(trainN);
    disposeRows(testN);
  }
}

function checkArgs(
  tr: { rows: number; dim: number },
  te: { rows: number; dim: number },
  trainLabels: Int32Array,
  testLabels: Int32Array,
  k: number,
  temperature: number,
  numClasses: number,
): void {
  const op = 'knnClassify';
  if (tr.dim !== te.dim) throw new Error(`${op}: train features have ${tr.dim} columns, test features ${te.dim}`);
  if (trainLabels.length !== tr.rows || testLabels.length !== te.rows) {
    throw new Error(`${op}: ${trainLabels.length} train / ${testLabels.length} test labels for ${tr.rows} / ${te.rows} feature rows`);
  }
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new Error(`${op}: k must be an integer in [1, ${MAX_K}], got ${k}`);
  if (k > tr.rows) throw new Error(`${op}: k = ${k} exceeds the ${tr.rows} train samples`);
  if (!(temperature > 0)) throw new Error(`${op}: temperature must be positive, got ${temperature}`);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`${op}: numClasses must be a positive integer, got ${numClasses}`);
  for (const [what, labels] of [['train', trainLabels], ['test', testLabels]] as const) {
    const bad = labels.findIndex((y) => y < 0 || y >= numClasses);
    if (bad >= 0) throw new Error(`${op}: ${what} label ${labels[bad]} at ${bad} is outside [0, ${numClasses})`);
  }
}

/** Unit-norm rows (centred by the train mean first when asked), as new blocks. */
function normalise(engine: Engine, train: FeatureRows, test: FeatureRows, centre: boolean): { trainN: Tensor[]; testN: Tensor[] } {
  const mean = centre ? columnStats(train).mean : null;
  const prep = (b: Tensor) => ops.l2Normalize(mean ? ops.sub(b, mean) : b, 1);
  const trainN = mapBlocks(engine, train, prep);
  const testN = mapBlocks(engine, test, prep);
  mean?.dispose();
  return { trainN, testN };
}

/** Test rows in blocks whose similarity matrix against one train block (of at most `trainRows`) stays within BLOCK_BYTES. */
function* testBlocks(testN: readonly Tensor[], trainRows: number): Generator<Tensor> {
  const rows = Math.max(1, Math.min(Math.floor(BLOCK_BYTES / (4 * trainRows)), 65535));
  for (const b of testN) {
    for (let s = 0; s < b.shape[0]; s += rows) {
      const view = ops.slice(b, 0, s, Math.min(s + rows, b.shape[0]));
      yield view;
      view.dispose();
    }
  }
}

/**
 * The k most similar rows of `train` (unit-norm row blocks) for each row of `query` (unit norm):
 * similarities [M, k] sorted best first (ties to the lower train index) and train indices [M, k] (i32).
 */
export function nearestNeighbours(train: FeatureRows, query: Tensor, k: number): { values: Tensor; indices: Tensor } {
  const engine = query.engine;
  const m = query.shape[0];
  const values = engine.empty([m, k]);
  const indices = engine.empty([m, k], 'i32');
  const perThread = engine.backend.isCpuAdapter;
  let colBase = 0;
  for (const block of rowBlocks(train)) {
    const n = block.shape[0];
    engine.scope(() => {
      const sim = ops.matmul(query, ops.transpose(block, 0, 1));
      topkKernel.launch({
        inputs: [sim],
        outputs: [values, indices],
        uniforms: { rows: m, cols: n, col_base: colBase, init: colBase === 0 },
        grid: perThread ? { invocations: m } : { workgroups: m },
        defines: { K: k, PER_THREAD: perThread },
      });
    });
    colBase += n;
  }
  return { values, indices };
}

function vote(
  values: Tensor,
  indices: Tensor,
  trainLabels: Tensor,
  testLabels: Tensor,
  pred: Tensor,
  rank: Tensor,
  row: number,
  invT: number,
): void {
  const [m, k] = values.shape;
  voteKernel.launch({
    inputs: [values, indices, trainLabels, testLabels],
    outputs: [pred, rank],
    uniforms: { rows: m, label_off: row, out_off: row, inv_t: invT },
    grid: { invocations: m },
    defines: { K: k },
  });
}
