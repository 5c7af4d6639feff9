// What the training loop needs from an SSL method: which views to draw, how to score candidate
// combinations (the HVP selection forward, docs/method.md §1-§2), and its ordinary training step on
// the selected views. The loop itself (views, selection, gather, logging, checkpoints) is shared.

import type { Engine, nn, optim, Rng, Tensor } from '../../engine/index.js';
import type { TableLike } from '../select/index.js';
import type { TrainConfig } from '../train/config.js';
import type { StudentBackbone } from './backbone.js';

/** The optimizers a method trains with. */
export type AnyOptimizer = optim.SGD | optim.AdamW | optim.LARS;

/** Candidate views of one output size, drawn per image. Views are stacked view-major: row v·B + b. */
export interface ViewGroup {
  name: string;
  /** Augmentation pipeline (hvp/views/pipelines.ts) of every view of the group, in view order. */
  pipelines: string[];
  size: number;
  scale: [number, number];
}

/** Where the step is in the run; schedules are indexed by `step`. */
export interface StepContext {
  step: number;
  epoch: number;
  totalSteps: number;
  /**
   * In a data-parallel run, this rank's samples [lo, hi) of the global batch of `batch`: a method that
   * draws per sample (iBOT's masks) draws for the global batch and keeps these, as one process would.
   */
  shard?: { lo: number; hi: number; batch: number };
}

/** What the training loop needs from an SSL method: its views, combinations, selection score and training step. */
export interface Method {
  readonly name: string;
  /** Everything a checkpoint saves: the student backbone is always the child `backbone`. */
  readonly model: nn.Module;
  /** The student backbone (what evaluation and checkpoints' `backbone.*` hold). */
  readonly backbone: StudentBackbone;
  readonly optimizer: AnyOptimizer;
  /** Candidate view groups; candidate view indices run over the groups in order. */
  readonly groups: ViewGroup[];
  /** Every combination of candidate view indices, lexicographic (docs/method.md §2). */
  readonly combinations: number[][];
  /**
   * Selection forward without gradients and the per-sample score of the given combinations (their
   * rows, or their i32 table [C, n] as the HVP step uploads it once): [B, C]. `views[g]` is group g's
   * candidate views [n_g·B, C, S, S].
   */
  score(views: Tensor[], rows: TableLike, ctx: StepContext): Tensor;
  /**
   * One training step on the selected views: `views[g]` holds the combination's views of group g,
   * slot-major [k_g·B, C, S, S]. Runs forward, loss, backward, optimizer and any EMA; returns the loss.
   * `gather` selects rows of any other per-candidate-view tensor of group g ([n_g·B, ...]) the same
   * way (iBOT's patch masks).
   */
  trainStep(views: Tensor[], ctx: StepContext, gather: (perView: Tensor, group: number) => Tensor): Promise<Tensor>;
  /**
   * Gradient accumulation (--grad-accum-steps K), the first half of `trainStep` for one of a step's K
   * micro-batches: forward, loss and a backward of loss / K, so that the K backward passes add up to the
   * gradient of the mean loss over the full batch. Returns the micro-batch's loss (unscaled). Whatever
   * the full batch shares (DINO's centre update) waits for `update`. Absent where a method cannot split
   * its step (iBOT, whose patch masks are drawn per full batch).
   */
  accumulate?(views: Tensor[], ctx: StepContext, gather: (perView: Tensor, group: number) => Tensor, microBatches: number): Tensor;
  /**
   * The second half, once after the last micro-batch: in a data-parallel run the accumulated gradients
   * (and DINO's pending centre sum) averaged over the ranks, then schedules, clipping, the optimizer
   * step, zeroed gradients, EMA, DINO's centre.
   */
  update?(ctx: StepContext): Promise<void>;
}

/**
 * How the replicas of a data-parallel run stay one model (hvp/distributed): a method calls
 * `gradients` between its (last) backward and its optimizer step, and `average` on state that is a
 * per-batch sum or mean (DINO's pending centre sum), so every rank steps as one process on the global
 * batch would.
 */
export interface ReplicaSync {
  /** Replace each parameter's gradient by its mean over the ranks. */
  gradients(params: readonly Tensor[]): Promise<void>;
  /** Replace each tensor's values by their mean over the ranks. */
  average(tensors: readonly Tensor[]): Promise<void>;
}

/** What createMethod builds a method from. */
export interface MethodInit {
  engine: Engine;
  config: TrainConfig;
  /** Image channels of the dataset. */
  channels: number;
  stepsPerEpoch: number;
  totalSteps: number;
  rng: Rng;
  /** Set in a data-parallel run (more than one rank); absent for a single process. */
  sync?: ReplicaSync;
}

/** The group (and the index within it) of every column of a combination, given the group sizes. */
export function columnGroups(combination: number[], groups: ViewGroup[]): { group: number; index: number }[] {
  const starts: number[] = [];
  let acc = 0;
  for (const g of groups) {
    starts.push(acc);
    acc += g.pipelines.length;
  }
  return combination.map((v) => {
    let g = groups.length - 1;
    while (g > 0 && v < starts[g]) g--;
    return { group: g, index: v - starts[g] };
  });
}

/**
 * Release a method's GPU memory: its model (student, heads, teacher, centres) and its optimizer's
 * state. A run's `PretrainResult.method` stays alive for its caller (evaluation, export); on an engine
 * that lives on for more runs, dispose each method when done with it, or its tensors stay allocated.
 */
export function disposeMethod(method: Method): void {
  method.model.dispose();
  method.optimizer.dispose();
}
