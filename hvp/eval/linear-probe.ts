// Linear probe (docs/method.md §6): a linear classifier on frozen features, trained on the GPU with SGD
// (momentum 0.9, cosine learning-rate decay to 0) and cross-entropy on seeded shuffled mini-batches.
// Features are standardised by the train split's per-column mean and standard deviation, so one
// learning rate suits raw pixels and every backbone alike.

import { Rng, nn, ops, optim, type Engine, type Tensor } from '../../engine/index.js';
import { columnStats, disposeRows, featureShape, mapBlocks, rowBlocks, type FeatureRows } from './rows.js';

/** Classes and training of a linear probe: epochs, learning rate, batch size, weight decay, momentum, seed. */
export interface LinearProbeOptions {
  numClasses: number;
  epochs?: number;
  lr?: number;
  batch?: number;
  weightDecay?: number;
  momentum?: number;
  seed?: number;
}

/** Accuracies of a linear probe. */
export interface LinearProbeResult {
  top1: number;
  trainTop1: number;
}

/** Columns whose train std is below this are only centred (a constant pixel must not blow up). */
const MIN_STD = 1e-6;
/** Rows per forward when measuring accuracy. */
const EVAL_ROWS = 4096;

/** Train a linear classifier on frozen features and report its test accuracy. */
export async function linearProbe(
  engine: Engine,
  trainFeatures: FeatureRows,
  trainLabels: Int32Array,
  testFeatures: FeatureRows,
  testLabels: Int32Array,
  opts: LinearProbeOptions,
): Promise<LinearProbeResult> {
  const { numClasses, epochs = 100, lr = 0.1, batch = 256, weightDecay = 0, momentum = 0.9, seed = 0 } = opts;
  const tr = featureShape('linearProbe (train)', trainFeatures);
  const te = featureShape('linearProbe (test)', testFeatures);
  checkArgs(tr, te, trainLabels, testLabels, numClasses, epochs, batch);

  const { mean, std } = columnStats(trainFeatures, true);
  const scale = engine.scope(() => ops.div(1, ops.clamp(std!, MIN_STD)));
  std!.dispose();
  const standardise = (b: Tensor) => ops.mul(ops.sub(b, mean), scale);
  const train = mapBlocks(engine, trainFeatures, standardise);
  const test = mapBlocks(engine, testFeatures, standardise);
  mean.dispose();
  scale.dispose();

  const rng = new Rng(seed);
  const head = new nn.Linear(engine, tr.dim, numClasses, rng);
  const opt = new optim.SGD(head.parameters(), { lr, momentum, weightDecay });
  try {
    const steps = Math.ceil(tr.rows / batch);
    const lrs = optim.cosineSchedule(lr, 0, epochs, steps);
    let it = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = permutation(tr.rows, rng);
      for (let s = 0; s < tr.rows; s += batch) {
        const idx = order.subarray(s, Math.min(s + batch, tr.rows)).sort();
        opt.setLr('all', lrs[it++]);
        engine.scope(() => {
          head.zeroGrad();
          const x = gatherRows(engine, train, idx);
          const y = engine.tensor(Int32Array.from(idx, (i) => trainLabels[i]), [idx.length], { dtype: 'i32' });
          ops.crossEntropy(head.forward(x), y).backward();
          opt.step();
        });
      }
      // Keeps the queue of recorded steps short.
      await engine.sync();
    }
    head.zeroGrad();
    return {
      top1: await accuracy(engine, head, test, testLabels),
      trainTop1: await accuracy(engine, head, train, trainLabels),
    };
  } finally {
    disposeRows(train);
    disposeRows(test);
    for (const p of head.parameters()) p.dispose();
    for (const st of opt.stateDict().state) for (const b of Object.values(st.buffers)) b.dispose();
  }
}

function checkArgs(
  tr: { rows: number; dim: number },
  te: { rows: number; dim: number },
  trainLabels: Int32Array,
  testLabels: Int32Array,
  numClasses: number,
  epochs: number,
  batch: number,
): void {
  const op = 'linearProbe';
  if (tr.dim !== te.dim) throw new Error(`${op}: train features have ${tr.dim} columns, test features ${te.dim}`);
  if (trainLabels.length !== tr.rows || testLabels.length !== te.rows) {
    throw new Error(`${op}: ${trainLabels.length} train / ${testLabels.length} test labels for ${tr.rows} / ${te.rows} feature rows`);
  }
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`${op}: epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`${op}: batch must be a positive integer, got ${batch}`);
  for (const [what, labels] of [['train', trainLabels], ['test', testLabels]] as const) {
    const bad = labels.findIndex((y) => !(y >= 0 && y < numClasses));
    if (bad >= 0) throw new Error(`${op}: ${what} label ${labels[bad]} at ${bad} is outside [0, ${numClasses})`);
  }
}

/** Fisher-Yates shuffle of 0 .. n-1 from the seeded generator. */
function permutation(n: number, rng: Rng): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Rows `idx` (ascending) of the row blocks, as one [idx.length, F] tensor. */
function gatherRows(engine: Engine, blocks: readonly Tensor[], idx: Int32Array): Tensor {
  const parts: Tensor[] = [];
  let base = 0;
  let at = 0;
  for (const b of blocks) {
    const end = base + b.shape[0];
    const from = at;
    while (at < idx.length && idx[at] < end) at++;
    if (at > from) {
      const local = engine.tensor(Int32Array.from(idx.subarray(from, at), (i) => i - base), [at - from], { dtype: 'i32' });
      parts.push(ops.indexSelect(b, 0, local));
    }
    base = end;
  }
  return parts.length === 1 ? parts[0] : ops.concat(parts, 0);
}

async function accuracy(engine: Engine, head: nn.Linear, features: FeatureRows, labels: Int32Array): Promise<number> {
  const preds: Tensor[] = [];
  for (const b of rowBlocks(features)) {
    for (let s = 0; s < b.shape[0]; s += EVAL_ROWS) {
      const rows = ops.slice(b, 0, s, Math.min(s + EVAL_ROWS, b.shape[0]));
      preds.push(engine.scope(() => engine.noGrad(() => ops.argmax(head.forward(rows), 1))));
      rows.dispose();
    }
  }
  let hits = 0;
  let at = 0;
  for (const p of preds) {
    const v = await p.toArray();
    for (let i = 0; i < v.length; i++) if (v[i] === labels[at + i]) hits++;
    at += v.length;
    p.dispose();
  }
  return hits / labels.length;
}
