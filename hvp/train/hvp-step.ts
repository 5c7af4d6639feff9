// One HVP step (docs/method.md §1) for any method: draw V views per image on the GPU, score every
// candidate combination with the method's own loss in a gradient-free selection forward, keep the
// hardest (or easiest, or a random) combination per sample, gather those views into the training
// batch on the GPU and run the method's ordinary training step. Nothing is read back unless asked.
// With --grad-accum-steps K the batch is split into K micro-batches that each go through these
// phases and a forward and backward, and the optimizer steps once after the last (docs/method.md §5).

import { nn, ops, type Engine, type Rng, type Tensor } from '../../engine/index.js';
import type { ImageBatch } from '../data/types.js';
import { columnGroups, type Method, type StepContext, type ViewGroup } from '../methods/method.js';
import { combinationTable, drawLimit, gatherSelected, limitCombinations, randomDraws, scoreSum as sumScores, selectCombination, sharedCombinationTable, type TableLike } from '../select/index.js';
import { renderViews, sampleViewParams, uploadBatch, viewPipeline, type PipelineName, type UploadedBatch, type ViewParams } from '../views/index.js';
import type { TrainConfig } from './config.js';
import { sliceBatch, sliceViewParams } from './micro-batch.js';
import { stepRng } from './rng.js';

/** What one HVP step returns: loss, selection, the scored combinations and the views' parameters. */
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

/** Step phase times, all zero. */
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

/** What hvpStep runs: engine, method, configuration, normalisation, and optionally a scorer of one's own. */
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
  /**
   * A selection criterion in place of the method's own loss: the score of every combination per
   * sample, [B, rows.length] f32, of which `config.select` keeps the highest ('hardest') or lowest.
   */
  scorer?: Scorer;
  /**
   * Called just before the step's last training micro-batch (the only one without gradient
   * accumulation), whose backward completes the gradients: a data-parallel run arms its early
   * gradient reads here (DataParallel.armGradientReads).
   */
  beforeLastBackward?: () => void;
}

/** What a custom selection criterion (HvpStepOptions.scorer) is given. */
export interface ScorerInput {
  engine: Engine;
  method: Method;
  /** Group g's candidate views [n_g·B, C, S, S], view-major, at the selection resolution. */
  views: Tensor[];
  /** The combinations to score, as candidate view indices over the groups in order. */
  rows: number[][];
  /** Parameters of every candidate view, per group, view-major (view v of image b at v·B + b). */
  params: ViewParams[][];
  /** Images in the batch (B). */
  batchSize: number;
  ctx: StepContext;
}

/** A pair-selection criterion: every combination's score per sample, [B, rows.length] f32, without gradients. */
export type Scorer = (input: ScorerInput) => Tensor;

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

/** What a step draws once for its whole batch: every candidate view's parameters and the combinations scored. */
interface StepDraw {
  params: ViewParams[][];
  rows: number[][];
  table: Tensor;
  ownTable: boolean;
}

/**
 * A step's draws: each group's view parameters from the step's stream 0, and the combinations (a --limit
 * subset drawn from `selRng`) with their i32 table, uploaded once per run, or once per step for a --limit draw.
 */
function drawStep(engine: Engine, scorer: Pick<Method, 'groups' | 'combinations'>, c: TrainConfig, batch: ImageBatch, step: number, selRng: Rng): StepDraw {
  const params = drawParams(scorer.groups, batch, stepRng(c.seed, step, 0));
  const all = scorer.combinations;
  const ownTable = c.limit > 0 && c.limit < all.length;
  const rows = ownTable ? limitCombinations(all, drawLimit(all.length, c.limit, selRng)) : all;
  // One table for the scorer and every gather.
  const table = ownTable ? combinationTable(engine, rows) : sharedCombinationTable(engine, rows);
  return { params, rows, table, ownTable };
}

/** Upload `batch` and render every group's views from `params`; `render` renders a group again at another size. */
function renderCandidates(
  engine: Engine,
  groups: readonly ViewGroup[],
  stats: { mean: readonly number[]; std: readonly number[] },
  batch: ImageBatch,
  params: ViewParams[][],
): Pick<Candidates, 'src' | 'views' | 'render'> {
  const src = uploadBatch(engine, batch);
  const render = (g: number, size: number) => {
    // σ is in output pixels, so it scales with the size.
    const p = size === groups[g].size ? params[g] : params[g].map((v) => (v.blurSigma ? { ...v, blurSigma: (v.blurSigma * size) / groups[g].size } : v));
    return renderViews(engine, src, p, { size, mean: stats.mean, std: stats.std });
  };
  return { src, views: groups.map((g, i) => render(i, g.size)), render };
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
  const d = drawStep(engine, scorer, c, batch, step, selRng);
  return { ...d, ...renderCandidates(engine, scorer.groups, stats, batch, d.params) };
}

/**
 * The views the selection forward scores: with --select-res the first group (the candidates the pair
 * is chosen among) rendered again at that size, the other groups' views (DINO's local crops) as
 * rendered for training. The caller disposes `[0]` when it is not `cand.views[0]`.
 */
export function selectionViews(c: TrainConfig, cand: Candidates): Tensor[] {
  return c.selectRes > 0 ? [cand.render(0, c.selectRes), ...cand.views.slice(1)] : cand.views;
}

/** What one micro-batch (or the whole batch, with one) leaves of a step: its loss and its selection. */
interface MicroResult {
  loss: Tensor;
  choice: Tensor;
  score: Tensor | null;
  scoreSum: Tensor | null;
  sampleScores: Tensor | null;
}

/** One HVP step: render candidate views, score every combination (the method's loss or `scorer`), keep one per sample, train on it. */
export async function hvpStep(o: HvpStepOptions, batch: ImageBatch, stepCtx: StepContext): Promise<StepResult> {
  const { engine, method, config: c } = o;
  const globalB = batch.labels.length;
  // A data-parallel rank trains on its share [lo, hi) of the global batch; one process on all of it.
  const [lo, hi] = o.shard ?? [0, globalB];
  const ctx: StepContext = o.shard ? { ...stepCtx, shard: { lo, hi, batch: globalB } } : stepCtx;
  const b = hi - lo;
  // Every random draw is made for the global batch, in the order one process without micro-batches
  // makes it, and each rank and each micro-batch takes its samples' share: so the views and random
  // choices of a sample depend neither on the number of ranks nor on --grad-accum-steps.
  const selRng = stepRng(c.seed, ctx.step, 1);
  const draw = drawStep(engine, method, c, batch, ctx.step, selRng);
  const { params, rows } = draw;
  // No selection forward: a uniform draw per sample (with one combination, plain SSL training).
  const draws = c.select === 'random' || rows.length === 1 ? randomDraws(globalB, rows.length, selRng) : null;
  // Samples [from, from + count) of the global batch: their images, view parameters and draws.
  const share = (from: number, count: number) => ({
    part: from === 0 && count === globalB ? batch : sliceBatch(batch, from, count),
    partParams: from === 0 && count === globalB ? params : sliceViewParams(params, method.groups, globalB, from, count),
    partDraws: draws && draws.slice(from, from + count),
  });

  const k = c.gradAccumSteps;
  let micro: MicroResult[];
  if (k === 1) {
    const { part, partParams, partDraws } = share(lo, b);
    o.beforeLastBackward?.();
    micro = [await microStep(o, part, partParams, draw, partDraws, ctx, (views, gather) => method.trainStep(views, ctx, gather))];
  } else {
    if (!method.accumulate || !method.update) throw new Error(`${method.name} cannot split a step into micro-batches: use --grad-accum-steps 1`);
    if (b % k !== 0) {
      const what = o.shard ? `a rank's share of ${b} images (--batch-size ${globalB} over ${globalB / b} ranks)` : `a batch of ${b} images`;
      throw new Error(`${what} cannot be split into --grad-accum-steps ${k} equal micro-batches`);
    }
    const m = b / k;
    micro = [];
    for (let i = 0; i < k; i++) {
      const { part, partParams, partDraws } = share(lo + i * m, m);
      if (i === k - 1) o.beforeLastBackward?.();
      micro.push(await microStep(o, part, partParams, draw, partDraws, ctx, (views, gather) => method.accumulate!(views, ctx, gather, k)));
    }
    const t = performance.now();
    // In a data-parallel run this averages the accumulated gradients over the ranks, once per step.
    await method.update(ctx);
    await mark(o, 'train', t);
  }
  if (draw.ownTable) draw.table.dispose();
  // The rate this step trained with: the loop logs it one step late, after the next step set its own.
  const lr = method.optimizer.groups[0].lr;
  // A data-parallel rank reports its own share: its samples' indices and view parameters.
  const mine = o.shard ? share(lo, b) : null;
  return { ...combineMicroResults(engine, micro, c.logSamples), rows, params: mine ? mine.partParams : params, lr, indices: Int32Array.from(mine ? mine.part.indices : batch.indices) };
}

/** Views, selection, gather and `train` (a full training step, or one micro-batch's share of it) on `batch`. */
async function microStep(
  o: HvpStepOptions,
  batch: ImageBatch,
  params: ViewParams[][],
  draw: StepDraw,
  draws: number[] | null,
  ctx: StepContext,
  train: (views: Tensor[], gather: (perView: Tensor, group: number) => Tensor) => Tensor | Promise<Tensor>,
): Promise<MicroResult> {
  const { engine, method, config: c } = o;
  const b = batch.labels.length;
  let t = performance.now();
  const cand: Candidates = { ...draw, params, ...renderCandidates(engine, method.groups, o, batch, params) };
  const { src, views } = cand;
  const { rows, table } = draw;
  t = await mark(o, 'views', t);

  let choice: Tensor;
  let score: Tensor | null = null;
  let scoreSum: Tensor | null = null;
  let sampleScores: Tensor | null = null;
  if (draws) {
    choice = engine.tensor(draws, [b], { dtype: 'i32' });
  } else {
    const scoreViews = selectionViews(c, cand);
    t = await mark(o, 'views', t);
    // Batch norm in the selection forward normalises over this (micro-)batch, as in its training forward.
    const scores = o.scorer
      ? engine.noGrad(() => o.scorer!({ engine, method, views: scoreViews, rows, params, batchSize: b, ctx }))
      : selectionForward(engine, method, scoreViews, table, ctx);
    if (o.scorer && (scores.shape.length !== 2 || scores.shape[0] !== b || scores.shape[1] !== rows.length || scores.dtype !== 'f32')) {
      scores.dispose();
      throw new Error(`hvpStep: the scorer returned ${scores.dtype} [${scores.shape.join(', ')}], expected f32 [${b}, ${rows.length}] (one score per sample and combination)`);
    }
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
  const trainViews = views.map((v, g) => gather(v, g));
  for (const v of views) if (!trainViews.includes(v)) v.dispose();
  src.dispose();
  t = await mark(o, o.times?.gather === undefined ? 'select' : 'gather', t);
  const loss = await train(trainViews, gather);
  for (const v of trainViews) v.dispose();
  await mark(o, 'train', t);
  return { loss, choice, score, scoreSum, sampleScores };
}

/**
 * One step's result from its micro-batches: the mean of their losses (the full batch's mean loss), the
 * choices and scores in sample order, the sum of every score, and the first `logSamples` samples' scores.
 */
function combineMicroResults(engine: Engine, micro: MicroResult[], logSamples: number): MicroResult {
  if (micro.length === 1) return micro[0];
  return engine.noGrad(() => {
    const cat = (ts: (Tensor | null)[]) => (ts.every((x): x is Tensor => x !== null) ? ops.concat(ts, 0) : null);
    const loss = ops.mul(micro.map((m) => m.loss).reduce((a, x) => ops.add(a, x)), 1 / micro.length);
    const scoreSum = micro.every((m) => m.scoreSum) ? micro.map((m) => m.scoreSum!).reduce((a, x) => ops.add(a, x)) : null;
    let sampleScores: Tensor | null = null;
    if (micro[0].sampleScores) {
      const parts: Tensor[] = [];
      let taken = 0;
      for (const m of micro) {
        const rows = Math.min(logSamples - taken, m.sampleScores?.shape[0] ?? 0);
        if (rows > 0) parts.push(ops.slice(m.sampleScores!, 0, 0, rows));
        taken += rows;
      }
      sampleScores = ops.concat(parts, 0);
    }
    return { loss, choice: cat(micro.map((m) => m.choice))!, score: cat(micro.map((m) => m.score)), scoreSum, sampleScores };
  });
}
