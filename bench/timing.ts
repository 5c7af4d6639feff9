// One timing method for us and for peers: encode the work, submit it, await the queue's
// onSubmittedWorkDone, and take the median over repetitions after warm-up runs (which also absorb
// pipeline compilation).

export interface Timing {
  medianMs: number;
  minMs: number;
  runsMs: number[];
}

export interface TimeOptions {
  warmup?: number;
  reps?: number;
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
  const runsMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const dispose = run();
    await done();
    runsMs.push(performance.now() - t0);
    dispose();
  }
  const sorted = [...runsMs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0], runsMs };
}
