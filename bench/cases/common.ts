// Timing loops shared by the kernel cases: one for our engine, one for the tfjs peer.

import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import type { Tensor } from '../../engine/index.js';
import type { BenchContext } from '../case.js';
import { timeGpu, type Timing } from '../timing.js';

/**
 * Time `fn` on our engine. Each run is a scope: what `fn` returns is disposed after the run, as are
 * the gradients it leaves on `params` (a backward run returns nothing and leaves only those).
 */
export function timeOurs({ engine, time }: BenchContext, fn: () => Tensor[], params: Tensor[] = []): Promise<Timing> {
  return timeGpu(
    () => {
      const kept = engine.scope(fn);
      return () => {
        kept.forEach((t) => t.dispose());
        for (const p of params) {
          p.grad?.dispose();
          p.grad = null;
        }
      };
    },
    () => engine.sync(),
    time,
  );
}

/** Time `fn` on the tfjs peer; its intermediates are freed by tf.tidy, its outputs after the run. */
export function timeTfjs({ tfjs, time }: BenchContext, fn: () => TfTensor[]): Promise<Timing> {
  const { tf, done } = tfjs!;
  return timeGpu(
    () => {
      const out = tf.tidy(fn);
      return () => out.forEach((t) => t.dispose());
    },
    done,
    time,
  );
}

export const TFJS = 'tfjs-webgpu';

/**
 * A timing of runs that each did the work `times` times, as the time of doing it once. Small kernels
 * (a few MFLOP, well under a millisecond on some adapters) are timed over several back-to-back
 * repetitions per run: one alone is close to the resolution of the adapter's timestamps and to the
 * cost of the submission around it.
 */
export function perRepetition(t: Timing, times: number): Timing {
  if (times === 1) return t;
  return {
    ...t,
    medianMs: t.medianMs / times,
    minMs: t.minMs / times,
    runsMs: t.runsMs.map((ms) => ms / times),
    wallMedianMs: t.wallMedianMs / times,
  };
}
