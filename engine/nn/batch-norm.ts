// nn.BatchNorm1d / nn.BatchNorm2d with torchvision's parameter and buffer names (`weight`, `bias`,
// `running_mean`, `running_var`, `num_batches_tracked`), on ops.batchNorm. Besides train/eval there
// is HVP's selection mode (docs/method.md §1 step 2): batch statistics as in training, running statistics untouched.

import type { Engine, Tensor } from '../engine.js';
import { batchNorm } from '../ops/batch-norm.js';
import type { BatchNormSync } from '../ops/batch-norm-sync.js';
import { Module } from './module.js';

/** Options of a batch-norm layer (PyTorch's defaults when absent). */
export interface BatchNormConfig {
  eps?: number;
  momentum?: number;
  /** Learnable per-channel scale and shift (SimSiam's last projector BN has none). */
  affine?: boolean;
}

/** PyTorch's _BatchNorm: the shared body; subclasses fix which input ranks they accept. */
export class BatchNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly running_mean: Tensor;
  readonly running_var: Tensor;
  /** A 0-d i32, as torchvision's 0-d int64, so checkpoints map one to one. */
  readonly num_batches_tracked: Tensor;
  readonly eps: number;
  readonly momentum: number;
  /** Normalise with batch statistics and leave the running ones alone, in either mode (see setBatchStatsOnly). */
  batchStatsOnly = false;
  /** Where batch statistics are taken (training, selection mode), take them over every replica (see setSyncBatchNorm). */
  sync: BatchNormSync | null = null;

  constructor(
    engine: Engine,
    readonly numFeatures: number,
    opts: BatchNormConfig,
    private readonly ranks: number[],
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(`${this.constructor.name}: numFeatures must be a positive integer, got ${numFeatures}`);
    }
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', engine.ones([numFeatures])) : null;
    this.bias = affine ? this.registerParameter('bias', engine.zeros([numFeatures])) : null;
    this.running_mean = this.registerBuffer('running_mean', engine.zeros([numFeatures]));
    this.running_var = this.registerBuffer('running_var', engine.ones([numFeatures]));
    this.num_batches_tracked = this.registerBuffer('num_batches_tracked', engine.tensor([0], [], { dtype: 'i32' }));
  }

  /**
   * relu?(bn(x) + residual?): with `epilogue`, the end of a ResNet block (or a BN and its ReLU) runs
   * in the batch norm's own kernels.
   */
  forward(x: Tensor, epilogue: BatchNormEpilogue = {}): Tensor {
    if (!this.ranks.includes(x.ndim)) {
      const want = this.ranks.map((r) => `${r}-D`).join(' or ');
      throw new Error(`${this.constructor.name}: expects ${want} input, got ${x}`);
    }
    const update = this.training && !this.batchStatsOnly;
    return batchNorm(x, this.weight, this.bias, this.running_mean, this.running_var, {
      training: this.training || this.batchStatsOnly,
      momentum: this.momentum,
      eps: this.eps,
      updateStats: update,
      numBatchesTracked: this.num_batches_tracked,
      residual: epilogue.residual,
      relu: epilogue.relu,
      sync: this.training || this.batchStatsOnly ? this.sync : null,
    });
  }
}

/** What BatchNorm.forward may fuse after the normalisation. */
export interface BatchNormEpilogue {
  /** Added after the affine step (same shape as the input). */
  residual?: Tensor;
  relu?: boolean;
}

/** Over [N, C] or [N, C, L]. */
export class BatchNorm1d extends BatchNorm {
  constructor(engine: Engine, numFeatures: number, opts: BatchNormConfig = {}) {
    super(engine, numFeatures, opts, [2, 3]);
  }
}

/** Over [N, C, H, W]. */
export class BatchNorm2d extends BatchNorm {
  constructor(engine: Engine, numFeatures: number, opts: BatchNormConfig = {}) {
    super(engine, numFeatures, opts, [4]);
  }
}

/**
 * Synchronise every batch norm under `root` over the replicas of a data-parallel run (PyTorch's
 * SyncBatchNorm.convert_sync_batchnorm), or stop (null). Training and HVP's selection mode then use
 * the global batch's statistics; eval mode keeps the running ones. Returns how many layers it set.
 */
export function setSyncBatchNorm(root: Module, sync: BatchNormSync | null): number {
  let n = 0;
  for (const [, m] of root.namedModules()) {
    if (m instanceof BatchNorm) {
      m.sync = sync;
      n++;
    }
  }
  return n;
}

/**
 * Put every batch norm under `root` in HVP's selection mode (on) or back to ordinary train/eval
 * behaviour (off). In selection mode a BN normalises with the batch's statistics even in eval mode
 * and updates neither running statistics nor num_batches_tracked.
 */
export function setBatchStatsOnly(root: Module, on: boolean): void {
  for (const [, m] of root.namedModules()) if (m instanceof BatchNorm) m.batchStatsOnly = on;
}
