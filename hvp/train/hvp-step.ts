// One HVP step (docs/method.md §1) for any method: draw V views per image on the GPU, score every
// candidate combination with the method's own loss in a gradient-free selection forward, keep the
// hardest (or easiest, or a random) combination per sample, gather those views into the training
// batch on the GPU and run the method's ordinary training step. Nothing is read back unless asked.

import { nn, ops, type Engine, type Rng, type Tensor } from '../../engine/index.js';
import { sliceBatch } from '../data/slice.js';
import type { ImageBatch } from '../data/types.js';
import { columnGroups, type Method, type StepContext, type ViewGroup } from '../methods/method.js';
import { drawLimit, gatherSelected, limitCombinations, randomChoice, scoreSum as sumScores, selectCombination } from '../select/index.js';
import { renderViews, sampleViewParams, uploadBatch, viewPipeline, type PipelineName, type ViewParams } from '../views/index.js';
import type { TrainConfig } from './config.js';
import { stepRng } from './rng.js';

export interface StepResult {
  loss: Tensor;
  /** [B] i32: index into `rows` of each sample's combination. */
  choice: Tensor;
  /** [B] f32 score of the chosen combination (absent for random selection). */
  score: Tensor | null;
  /** The scored combinations (all of them, or the `limit` draw). */
  rows: number[][];
  /** Parameters of every candidate view, per group, view-major. */
  params: ViewParams[][];
  /** Learning rate of the first parameter group in this step (read before a later step changes it). */
  lr: number;
  /**
   * 0-d f32: the sum of every score of every scored combination, non-finite exactly when one of them
   * is NaN or infinite (the chosen score alone may hide one); absent without a selection forward.
   */
  scoreSum: Tensor | null;
  /** Dataset index of every sample, so a logged view can be rendered again from its parameters. */
  indices: Int32Array;
  /** [K, rows.length] f32: every combination's score for the first K samples, on logged steps with --log-samples K. */
  sampleScores: Tensor | null;
}

/** Milliseconds of each phase, measured with a GPU sync after each (profiling only). */
export interface StepTimes {
  views: number;
  selectionForward: number;
  /** Choosing each sample's combination (argmax over its scores, or the random draw). */
  select: number;
  /** Gathering the chosen views into the training batch (counted in `select` when absent). */
  gather?: number;
  train: number;
}

export function zeroTimes(): StepTimes {
  return { views: 0, selectionForward: 0, select: 0, gather: 0, train: 0 };
}

/** Whether the loop logs step `step` of `totalSteps`. */
export function isLoggedStep(c: TrainConfig, step: number, totalSteps: number): boolean {
  return step % c.logEvery === 0 || step === totalSteps - 1;
}

export interface HvpStepOptions {
  engine: Engine;
  method: Method;
  config: TrainConfig;
  mean: readonly number[];
  std: readonly number[];
  /** Sync after each phase and fill `times` (slower; for the bench breakdown). */
  times?: StepTimes;
  /**
   * A data-parallel rank's samples [lo, hi) of the global batch it is given: every random draw is
   * made for the global batch (as one process makes it) and the rank keeps its share, so the ranks'
   * shares together are the single-process step.
   */
  shard?: [number, number];
}

/** Every candidate view's parameters, per group, view-major (view v of image b at v·B + b). */
export function drawParams(groups: readonly ViewGroup[], batch: ImageBatch, rng: Rng): ViewParams[][] {
  const b = batch.labels.length;
  return groups.map((g) => {
    const out: ViewParams[] = [];
    for (const name of g.pipelines) {
      const pipeline = viewPipeline(name as PipelineName, { size: g.size, channels: batch.channels, scale: g.scale });
      for (let i = 0; i < b; i++) out.push(sampleViewParams(pipeline, batch.heights[i], batch.widths[i], rng));
    }
    return out;
  });
}

/** The rows of `table` restricted to the columns that come from group `g`, as indices within that group. */
function groupTable(method: Method, rows: number[][], g: number): number[][] {
  return rows.map((r) => columnGroups(r, method.groups).filter((c) => c.group === g).map((c) => c.index));
}

async function mark(o: HvpStepOptions, phase: keyof StepTimes, t0: number): Promise<number> {
  if (!o.times) return t0;
  await o.engine.sync();
  const now = performance.now();
  o.times[phase] = (o.times[phase] ?? 0) + now - t0;
  return now;
}

/** The selection forward: every combination's score per sample, [B, rows.length], without gradients. */
export function selectionForward(engine: Engine, method: Method, views: Tensor[], rows: number[][], ctx: StepContext): Tensor {
  // Batch statistics for the selection forward only: training mode's running statistics must come
  // back even when scoring throws, or every later step would train without updating them.
  nn.setBatchStatsOnly(method.model, true);
  try {
    return engine.noGrad(() => method.score(views, rows, ctx));
  } finally {
    nn.setBatchStatsOnly(method.model, false);
  }
}

export async function hvpStep(o: HvpStepOptions, batch: ImageBatch, stepCtx: StepContext): Promise<StepResult> {
  const { engine, method, config: c } = o;
  const globalB = batch.labels.length;
  const [lo, hi] = o.shard ?? [0, globalB];
  const ctx: StepContext = o.shard ? { ...stepCtx, shard: { lo, hi, batch: globalB } } : stepCtx;
  const b = hi - lo;
  let t = performance.now();
  const globalParams = drawParams(method.groups, batch, stepRng(c.seed, ctx.step, 0));
  // View-major: view v of sample i at v·B + i, so a share is a slice of every view's block.
  const params = o.shard ? globalParams.map((g) => g.filter((_, k) => k % globalB >= lo && k % globalB < hi)) : globalParams;
  if (o.shard) batch = sliceBatch(batch, lo, hi);
  const src = uploadBatch(engine, batch);
  // Views for --select-res reuse the same parameters; σ is in output pixels, so it scales with the size.
  const render = (size: number) =>
    method.groups.map((g, i) => {
      const s = i === 0 ? size : g.size;
      const p = s === g.size ? params[i] : params[i].map((v) => (v.blurSigma ? { ...v, blurSigma: (v.blurSigma * s) / g.size } : v));
      return renderViews(engine, src, p, { size: s, mean: o.mean, std: o.std });
    });
  const views = render(method.groups[0].size);
  t = await mark(o, 'views', t);

  const selRng = stepRng(c.seed, ctx.step, 1);
  const all = method.combinations;
  const rows = c.limit > 0 && c.limit < all.length ? limitCombinations(all, drawLimit(all.length, c.limit, selRng)) : all;
  let choice: Tensor;
  let score: Tensor | null = null;
  let scoreSum: Tensor | null = null;
  let sampleScores: Tensor | null = null;
  if (c.select === 'random' || rows.length === 1) {
    // No selection forward: a uniform draw per sample (with one combination, plain SSL training).
    choice = randomChoice(engine, globalB, rows.length, selRng, [lo, hi]);
  } else {
    const scoreViews = c.selectRes > 0 ? render(c.selectRes) : views;
    t = await mark(o, 'views', t);
    const scores = selectionForward(engine, method, scoreViews, rows, ctx);
    if (scoreViews !== views) for (const v of scoreViews) v.dispose();
    t = await mark(o, 'selectionForward', t);
    ({ choice, score } = selectCombination(scores, c.select));
    scoreSum = sumScores(scores);
    if (c.logSamples > 0 && isLoggedStep(c, ctx.step, ctx.totalSteps)) {
      sampleScores = engine.noGrad(() => ops.clone(ops.slice(scores, 0, 0, Math.min(c.logSamples, b))));
    }
    scores.dispose();
  }
  t = await mark(o, 'select', t);
  // A group none of whose views is chosen among (iBOT's locals) is trained on whole.
  const tables = views.map((_, g) => groupTable(method, rows, g));
  const gather = (x: Tensor, g: number) => (tables[g][0].length === 0 ? x : gatherSelected(x, choice, tables[g]));
  const train = views.map((v, g) => gather(v, g));
  for (const v of views) if (!train.includes(v)) v.dispose();
  src.dispose();
  t = await mark(o, o.times?.gather === undefined ? 'select' : 'gather', t);
  const loss = await method.trainStep(train, ctx, gather);
  // The rate this step trained with: the loop logs it one step late, after the next step set its own.
  const lr = method.optimizer.groups[0].lr;
  for (const v of train) v.dispose();
  await mark(o, 'train', t);
  return { loss, choice, score, rows, params, lr, scoreSum, indices: Int32Array.from(batch.indices), sampleScores };
}
