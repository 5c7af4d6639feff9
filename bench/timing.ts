// One timing method for us and for peers: encode the work, submit it, await the queue's
// onSubmittedWorkDone, and take the median over repetitions after warm-up runs (which also absorb
// pipeline compilation). Where the device has `timestamp-query`, each timed run is also bracketed by
// two GPU timestamps, so the median excludes the CPU's encoding and the wait for the queue's callback.
// Timestamps that cannot be right (an interval that is not positive, not finite, or longer than the
// wall interval around it) make the whole case fall back to wall time, and the record says so.

import { GpuStamps } from './stamps.js';

/** `wall (timestamps invalid)`: the run had timestamps, but some interval failed checkIntervals. */
export type TimingMethod = 'timestamp-query' | 'wall' | 'wall (timestamps invalid)';
export const STAMPS_INVALID: TimingMethod = 'wall (timestamps invalid)';

export interface Timing {
  /** Median by `method`. */
  medianMs: number;
  minMs: number;
  runsMs: number[];
  method: TimingMethod;
  /** Median wall time (submit to onSubmittedWorkDone), whatever the method. */
  wallMedianMs: number;
  /** Why timestamps were not used although the side had them. */
  note?: string;
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
  const gpuMs = stamps && bracketed ? await stamps.intervals() : null;
  stamps?.destroy();
  return chooseRuns(gpuMs, wallMs);
}

/**
 * Why the GPU intervals cannot be the runs' times, or null when each can: an interval must be finite,
 * positive (Dawn quantises timestamps, so a run shorter than the quantum can read 0; a driver can
 * also return a pair out of order) and no longer than the wall interval that encloses it.
 */
export function checkIntervals(gpuMs: readonly number[], wallMs: readonly number[]): string | null {
  if (gpuMs.length !== wallMs.length) return `${gpuMs.length} timestamp intervals for ${wallMs.length} runs`;
  for (const [i, ms] of gpuMs.entries()) {
    if (!Number.isFinite(ms)) return `run ${i}: timestamp interval ${ms} ms is not finite`;
    if (ms <= 0) return `run ${i}: timestamp interval ${ms} ms is not positive`;
    if (ms > wallMs[i]) return `run ${i}: timestamp interval ${ms} ms exceeds the run's wall time ${wallMs[i]} ms`;
  }
  return null;
}

/** The timing of runs with wall times `wallMs` and, when they were bracketed by timestamps, GPU intervals `gpuMs`. */
export function chooseRuns(gpuMs: readonly number[] | null, wallMs: readonly number[]): Timing {
  const wall = { ...stats(wallMs), runsMs: [...wallMs], wallMedianMs: stats(wallMs).medianMs };
  if (gpuMs === null) return { ...wall, method: 'wall' };
  const invalid = checkIntervals(gpuMs, wallMs);
  if (invalid) return { ...wall, method: STAMPS_INVALID, note: invalid };
  return { ...stats(gpuMs), runsMs: [...gpuMs], method: 'timestamp-query', wallMedianMs: wall.wallMedianMs };
}

function stats(runs: readonly number[]): { medianMs: number; minMs: number } {
  const sorted = [...runs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0] };
}
