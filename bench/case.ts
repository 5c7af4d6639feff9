// What a bench case is, and the record it produces (the JSON schema `--json` writes).

import type { Engine } from '../engine/index.js';
import type { TfjsPeer } from './peers/tfjs.js';
import type { TorchOutcome, TorchPeer } from './peers/torch.js';
import type { LoaderPeer } from './peers/torch-loader.js';
import type { TimeOptions, Timing, TimingMethod } from './timing.js';

export interface BenchContext {
  engine: Engine;
  tfjs: TfjsPeer | null;
  /** PyTorch on this machine's CPU, for the cases that time whole training steps in it too. */
  torch?: TorchPeer | null;
  /** torchvision's DataLoader, the loader case's peer. */
  torchvision?: LoaderPeer | null;
  /** Repetitions and, for whichever side runs, that side's timestamp clock. */
  time: TimeOptions;
}

export interface BenchCase {
  name: string;
  shape: string;
  /** In the `--quick` subset. */
  quick: boolean;
  /** Only with `--all`: cases too slow for the 15-minute full run on a CPU adapter. */
  extended?: boolean;
  /** Floating-point operations of one run (compute-bound cases report GFLOP/s). */
  flops?: number;
  /** Bytes moved by one run (memory-bound cases report GB/s). */
  bytes?: number;
  /** Images processed by one run (training steps report images/s). */
  images?: number;
  /** Repetitions for this case (ours and the peer's) when they must differ from the run's (whole training steps take seconds on a CPU adapter). */
  reps?: { warmup?: number; reps?: number };
  /** Also timed in PyTorch on the CPU when that peer is present (its `ours` fills OursTiming.torch). */
  torch?: boolean;
  ours: (ctx: BenchContext) => Promise<OursTiming>;
  /** Timed in rounds alternating with ours; on the tfjs side unless `needs` names another. */
  peer?: { name: string; needs?: 'tfjs' | 'torchvision'; run: (ctx: BenchContext) => Promise<PeerTiming> };
}

/** A peer's timing and optionally its own `figures`, recorded as `peer_<name>`. */
export interface PeerTiming extends Timing {
  figures?: Record<string, number>;
}

/**
 * What a case's own side returns: its timing, and optionally its peak memory, `baselines` it timed in
 * the same process (pair scoring's per-pair `loop`, the HVP step's `random` step) and other `figures`.
 */
export interface OursTiming extends Timing {
  peakBytes?: number;
  baselines?: Record<string, Timing>;
  figures?: Record<string, number>;
  /** The same work timed in PyTorch on the CPU (`torch_ms`, `torch_ratio` = torch_ms / ours_ms), or why not. */
  torch?: TorchOutcome;
}

export interface BenchRecord {
  name: string;
  shape: string;
  /** Median GPU time between timestamps, or median wall time: see `timing`. */
  ours_ms: number;
  peer: string | null;
  peer_ms: number | null;
  /**
   * peer_ms / ours_ms: above 1 means we are faster. With `rounds` > 1 (ours and the peer timed
   * alternately), the median of the rounds' ratios, `ratio_min`/`ratio_max` their spread, and
   * ours_ms/peer_ms the medians of the rounds' medians.
   */
  ratio: number | null;
  /** How ours_ms and peer_ms were measured: both sides the same way, so the ratio compares like with like. */
  timing: TimingMethod;
  /** With `wall (timestamps invalid)`: which side's interval failed the check, and how. */
  timing_note?: string;
  /** Median submit-to-onSubmittedWorkDone wall times, whatever `timing` is. */
  ours_wall_ms: number;
  peer_wall_ms: number | null;
  gflops?: number;
  gbps?: number;
  /**
   * Fraction of this run's measured peak: gbps / the copy case's GB/s for memory-bound cases,
   * gflops / the best matmul's GFLOP/s for compute-bound ones (absent when the run has no reference).
   */
  of_peak?: number;
  images_per_s?: number;
  /** Peak bytes of pooled GPU buffers in use during the timed runs, in MiB. */
  peak_mib?: number;
  /**
   * For each baseline b of OursTiming: `b_ms` (measured as ours_ms is) and `b_ratio` = b_ms / ours_ms;
   * then the case's figures under their own names (e.g. the HVP step's `frac_*` and `peak_ratio`);
   * then the PyTorch peer's `torch_ms`, `torch_ratio` = torch_ms / ours_ms, `torch_views_ms`,
   * `torch_params`, `torch_threads`, or `torch_skipped` with the reason (with rounds, `torch_ratio`
   * is the median of the rounds' and `torch_ratio_min`/`torch_ratio_max` its spread); with `images`
   * and a peer, `peer_images_per_s`; the peer's figures as `peer_<name>`.
   */
  [figure: string]: string | number | null | undefined;
}
