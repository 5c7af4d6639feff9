// One HVP step (docs/method.md §1) for any method: draw V views per image on the GPU, score every
// candidate combination with the method's own loss in a gradient-free selection forward, keep the
// hardest (or easiest, or a random) combination per sample, gather those views into the training
// batch on the GPU and run the method's ordinary training step. Nothing is read back unless asked.

import { nn, ops, type Engine, type Rng, type Tensor } from '../../engine/index.js';
import type { ImageBatch } from '../data/types.js';
import { columnGroups, type Method, type StepContext, type ViewGroup } from '../methods/method.js';
import { combinationTable, drawLimit, gatherSelected, limitCombinations, randomChoice, scoreSum as sumScores, selectCombination, sharedCombinationTable, type TableLike } from '../select/index.js';
import { renderViews, sampleViewParams, uploadBatch, viewPipeline, type PipelineName, type UploadedBatch, type ViewParams } from '../views/index.js';
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

/** Whether the loop times the phases of step `step` (a logged step at a multiple of --time-every). */
export function isTimedStep(c: TrainConfig, step: number, totalSteps: number): boolean {
  return c.timeEvery > 0 && step % c.timeEvery === 0 && isLoggedStep(c, step, totalSteps);
}

export interface HvpStepOptions {
  engine: Engine;
  method: Method;
  config: TrainConfig;
  mean: readonly number[];
  std: readonly number[];
  /** Sync after each phase and fill `times` (slower; for the bench breakdown). */
  times?: StepTimes;
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

/**
 * Where each group's views sit in a combination row: the columns [from, to) that hold group g's views
 * and the index of its first view (subtracted to index within the group), or null for a group none of
 * whose views is chosen among (iBOT's locals, trained on whole). Every row must agree.
 */
export function groupColumns(method: Method, rows: readonly number[][]): ({ columns: [number, number]; viewOffset: number } | null)[] {
  const starts = method.groups.map((_, g) => method.groups.slice(0, g).reduce((n, x) => n + x.pipelines.length, 0));
  const groupOf = rows[0].map((_, col) => columnGroups([rows[0][col]], method.groups)[0].group);
  for (const r of rows) {
    if (r.length !== groupOf.length || columnGroups(r, method.groups).some((c, col) => c.group !== groupOf[col])) {
      throw new Error(`${method.name}: combination [${r.join(', ')}] does not hold its view groups in the columns of [${rows[0].join(', ')}]`);
    }
  }
  return method.groups.map((_, g) => {
    const from = groupOf.indexOf(g);
    if (from < 0) return null;
    const to = groupOf.lastIndexOf(g) + 1;
    if (groupOf.slice(from, to).some((x) => x !== g)) throw new Error(`${method.name}: the views of group ${g} are not in adjacent columns`);
    return { columns: [from, to], viewOffset: starts[g] };
  });
}

async function mark(o: HvpStepOptions, phase: keyof StepTimes, t0: number): Promise<number> {
  if (!o.times) return t0;
  await o.engine.sync();
  const now = performance.now();
  o.times[phase] = (o.times[phase] ?? 0) + now - t0;
  return now;
}

/** The selection forward: every combination's score per sample, [B, rows.length], without gradients. */
export function selectionForward(engine: Engine, method: Method, views: Tensor[], rows: TableLike, ctx: StepContext): Tensor {
  // Batch statistics for the selection forward only: training mode's running statistics must come
  // back even when scoring throws, or every later step would train without updating them.
  nn.setBatchStatsOnly(method.model, true);
  try {
    return engine.noGrad(() => method.score(views, rows, ctx));
  } finally {
    nn.setBatchStatsOnly(method.model, false);
  }
}

/** A step's candidates (docs/method.md §1 steps 1-2): every view of every group, and the combinations scored. */
export interface Candidates {
  /** The batch's images on the GPU. */
  src: UploadedBatch;
  /** Every candidate view's parameters, per group, view-major. */
  params: ViewParams[][];
  /** Group g's candidate views [n_g·B, C, S, S]. */
  views: Tensor[];
  /** The combinations scored (all of them, or the --limit draw) and their i32 table. */
  rows: number[][];
  table: Tensor;
  /** The table was uploaded for this step alone (a --limit draw); otherwise it is the run's shared one. */
  ownTable: boolean;
  /** Group g's views rendered again at `size` from the same parameters. */
  render(g: number, size: number): Tensor;
}

/**
 * Draw a step's candidates as every HVP step does: the images uploaded, each group's view parameters
 * from the step's stream 0, the views rendered, and the combinations (a --limit subset drawn from `selRng`).
 */
export function drawCandidates(
  engine: Engine,
  scorer: Pick<Method, 'groups' | 'combinations'>,
  c: TrainConfig,
  stats: { mean: readonly number[]; std: readonly number[] },
  batch: ImageBatch,
  step: number,
  selRng: Rng,
): Candidates {
  const src = uploadBatch(engine, batch);
  const { groups } = scorer;
  const params = drawParams(groups, batch, stepRng(c.seed, step, 0));
  const render = (g: number, size: number) => {
    // σ is in output pixels, so it scales with the size.
    const p = size === groups[g].size ? params[g] : params[g].map((v) => (v.blurSigma ? { ...v, blurSigma: (v.blurSigma * size) / groups[g].size } : v));
    return renderViews(engine, src, p, { size, mean: stats.mean, std: stats.std });
  };
  const views = groups.map((g, i) => render(i, g.size));
  const all = scorer.combinations;
  const ownTable = c.limit > 0 && c.limit < all.length;
  const rows = ownTable ? limitCombinations(all, drawLimit(all.length, c.limit, selRng)) : all;
  // One table for the scorer and every gather: uploaded once per run, or once per step for a --limit draw.
  const table = ownTable ? combinationTable(engine, rows) : sharedCombinationTable(engine, rows);
  return { src, params, views, rows, table, ownTable, render };
}

/**
 * The views the selection forward scores: with --select-res the first group (the candidates the pair
 * is chosen among) rendered again at that size, the other groups' views (DINO's local crops) as
 * rendered for training. The caller disposes `[0]` when it is not `cand.views[0]`.
 */
export function selectionViews(c: TrainConfig, cand: Candidates): Tensor[] {
  return c.selectRes > 0 ? [cand.render(0, c.selectRes), ...cand.views.slice(1)] : cand.views;
}

export async function hvpStep(o: HvpStepOptions, batch: ImageBatch, ctx: StepContext): Promise<StepResult> {
  const { engine, method, config: c } = o;
  const b = batch.labels.length;
  let t = performance.now();
  const selRng = stepRng(c.seed, ctx.step, 1);
  const cand = drawCandidates(engine, method, c, o, batch, ctx.step, selRng);
  const { src, params, views, rows, table } = cand;
  t = await mark(o, 'views', t);

  let choice: Tensor;
  let score: Tensor | null = null;
  let scoreSum: Tensor | null = null;
  let sampleScores: Tensor | null = null;
  if (c.select === 'random' || rows.length === 1) {
    // No selection forward: a uniform draw per sample (with one combination, plain SSL training).
    choice = randomChoice(engine, b, rows.length, selRng);
  } else {
    const scoreViews = selectionViews(c, cand);
    t = await mark(o, 'views', t);
    const scores = selectionForward(engine, method, scoreViews, table, ctx);
    if (scoreViews !== views) scoreViews[0].dispose();
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
  const columns = groupColumns(method, rows);
  const gather = (x: Tensor, g: number) => (columns[g] ? gatherSelected(x, choice, table, columns[g]!) : x);
  const train = views.map((v, g) => gather(v, g));
  for (const v of views) if (!train.includes(v)) v.dispose();
  src.dispose();
  t = await mark(o, o.times?.gather === undefined ? 'select' : 'gather', t);
  const loss = method.trainStep(train, ctx, gather);
  // The rate this step trained with: the loop logs it one step late, after the next step set its own.
  const lr = method.optimizer.groups[0].lr;
  for (const v of train) v.dispose();
  if (cand.ownTable) table.dispose();
  await mark(o, 'train', t);
  return { loss, choice, score, rows, params, lr, scoreSum, indices: Int32Array.from(batch.indices), sampleScores };
}
