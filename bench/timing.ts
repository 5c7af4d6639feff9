// One timing method for us and for peers: encode the work, submit it, await the queue's
// onSubmittedWorkDone, and take the median over repetitions after warm-up runs (which also absorb
// pipeline compilation). Where the device has `timestamp-query`, each timed run is also bracketed by
// two GPU timestamps, so the median excludes the CPU's encoding and the wait for the queue's callback.

import { GpuStamps } from './stamps.js';

export type TimingMethod = 'timestamp-query' | 'wall';

export interface Timing {
  /** Median by `method`. */
  medianMs: number;
  minMs: number;
  runsMs: number[];
  method: TimingMethod;
  /** Median wall time (submit to onSubmittedWorkDone), whatever the method. */
  wallMedianMs: number;
}

/** What timestamp timing needs of a side (our engine or a peer): its device and a way to submit. */
export interface GpuClock {
  /** A device created with the `timestamp-query` feature. */
  device: GPUDevice;
  /** Submit the work encoded so far, without waiting for it. */
  flush: () => void;
  /** Submissions so far: one made while a run is encoded would put part of the run before the start stamp. */
  submits: () => number;
}

export interface TimeOptions {
  warmup?: number;
  reps?: number;
  /** Time with GPU timestamps on this clock; without one (or when a run submits early), wall time. */
  clock?: GpuClock | null;
}

/**
 * `run` encodes one repetition and returns a disposer for what it made; `done` submits pending work
 * and resolves when the GPU has finished it.
 */
export async function timeGpu(run: () => () => void, done: () => Promise<void>, opts: TimeOptions = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 2;
  const reps = Math.max(opts.reps ?? 5, 1);
  for (let i = 0; i < warmup; i++) {
    const dispose = run();
    await done();
    dispose();
  }
  const clock = opts.clock ?? null;
  const stamps = clock ? new GpuStamps(clock.device, reps) : null;
  let bracketed = true;
  const wallMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const submits = clock?.submits();
    const dispose = run();
    if (clock && stamps) {
      // Start stamp, the run's work and end stamp are submitted back to back: the GPU, idle since the
      // last run, starts the work right after the first stamp and writes the second when it is done.
      bracketed &&= clock.submits() === submits;
      stamps.write(2 * i);
      clock.flush();
      stamps.write(2 * i + 1);
    }
    await done();
    wallMs.push(performance.now() - t0);
    dispose();
  }
  const gpuMs = stamps ? await stamps.intervals() : null;
  stamps?.destroy();
  const valid = bracketed && gpuMs !== null && gpuMs.every((ms) => ms > 0);
  const runsMs = valid ? gpuMs! : wallMs;
  return { ...stats(runsMs), runsMs, method: valid ? 'timestamp-query' : 'wall', wallMedianMs: stats(wallMs).medianMs };
}

function stats(runs: number[]): { medianMs: number; minMs: number } {
  const sorted = [...runs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0] };
}
