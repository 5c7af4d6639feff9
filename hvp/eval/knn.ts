// Weighted k-NN classification of frozen features (SPEC §6, DINO's eval_knn): L2-normalised features
// (after subtracting the train mean when `centre`), cosine similarity, the k most similar train samples
// vote with weight exp(sim / T), the class with the largest vote wins (ties to the lowest class).
// On the GPU: test rows in blocks, each block's similarities to one train block at a time (a matmul),
// folded into a running top-k per row (shaders/knn_topk.wgsl), then the vote (shaders/knn_vote.wgsl).
// Only the predictions and the true labels' ranks come back.

import { grid1d } from '../../engine/runtime.js';
import { ops, type Engine, type Tensor } from '../../engine/index.js';
import { Progress } from '../../cli/progress.js';
import { BLOCK_BYTES, columnStats, disposeRows, featureShape, mapBlocks, rowBlocks, type FeatureRows } from './rows.js';
import topkSource from '../../shaders/knn_topk.wgsl';
import voteSource from '../../shaders/knn_vote.wgsl';

export interface KnnSplit {
  features: FeatureRows;
  labels: Int32Array;
}

export interface KnnOptions {
  numClasses: number;
  k?: number;
  temperature?: number;
  /** Subtract the train features' mean before normalising. */
  centre?: boolean;
  /** Label of a progress bar on stderr over the test rows (none when absent). */
  progress?: string;
}

export interface KnnResult {
  top1: number;
  /** Only when there are more than 5 classes. */
  top5?: number;
  predictions: Int32Array;
}

/** Most neighbours a row keeps: each invocation holds its list in private memory. */
export const MAX_K = 64;
/** Invocations per row in the GPU top-k variant: at least MAX_K (see the shader), a power of two. */
const TOPK_THREADS = 64;

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
  const kernel = { name: 'knn_topk', source: topkSource, defines: { K: k, PER_THREAD: perThread, THREADS: TOPK_THREADS } };
  let colBase = 0;
  for (const block of rowBlocks(train)) {
    const n = block.shape[0];
    engine.scope(() => {
      const sim = ops.matmul(query, ops.transpose(block, 0, 1));
      const [gx, gy] = grid1d(perThread ? Math.ceil(m / 64) : m);
      engine.backend.dispatch({
        kernel,
        inputs: [sim.buffer],
        outputs: [values.buffer, indices.buffer],
        uniforms: new Uint32Array([m, n, sim.offset, colBase, colBase === 0 ? 1 : 0, perThread ? gx * 64 : gx]),
        workgroups: [gx, gy],
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
  const [gx, gy] = grid1d(Math.ceil(m / 64));
  const u = new Uint32Array(5);
  u.set([m, row, row, gx * 64]);
  new Float32Array(u.buffer)[4] = invT;
  values.engine.backend.dispatch({
    kernel: { name: 'knn_vote', source: voteSource, defines: { K: k } },
    inputs: [values.buffer, indices.buffer, trainLabels.buffer, testLabels.buffer],
    outputs: [pred.buffer, rank.buffer],
    uniforms: u,
    workgroups: [gx, gy],
  });
}
