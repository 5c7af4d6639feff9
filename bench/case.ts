// What a bench case is, and the record it produces (the JSON schema `--json` writes).

import type { Engine } from '../engine/index.js';
import type { TfjsPeer } from './peers/tfjs.js';
import type { TimeOptions, Timing } from './timing.js';

export interface BenchContext {
  engine: Engine;
  tfjs: TfjsPeer | null;
  time: TimeOptions;
}

export interface BenchCase {
  name: string;
  shape: string;
  /** In the `--quick` subset. */
  quick: boolean;
  /** Floating-point operations of one run (compute-bound cases report GFLOP/s). */
  flops?: number;
  /** Bytes moved by one run (memory-bound cases report GB/s). */
  bytes?: number;
  /** Images processed by one run (training steps report images/s). */
  images?: number;
  /** Repetitions for this case when they must differ from the run's (whole training steps take seconds on a CPU adapter). */
  reps?: { warmup: number; reps: number };
  ours: (ctx: BenchContext) => Promise<Timing & { peakBytes?: number }>;
  peer?: { name: string; run: (ctx: BenchContext) => Promise<Timing> };
}

export interface BenchRecord {
  name: string;
  shape: string;
  ours_ms: number;
  peer: string | null;
  peer_ms: number | null;
  /** peer_ms / ours_ms: above 1 means we are faster. */
  ratio: number | null;
  gflops?: number;
  gbps?: number;
  images_per_s?: number;
  /** Peak bytes of pooled GPU buffers in use during the timed runs, in MiB. */
  peak_mib?: number;
}
