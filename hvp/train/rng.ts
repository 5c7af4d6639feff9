// Per-step random streams. A run draws everything of step `step` from generators seeded by (seed,
// step, stream) alone, so resuming at any step draws exactly what the full run drew there; the
// streams keep the view parameters, the selection and each method's own draws independent.

import { Rng } from '../../engine/index.js';

/** A generator for step `step` of a run: resuming at any step draws exactly what the full run drew. */
export function stepRng(seed: number, step: number, stream: number): Rng {
  return new Rng((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35)) >>> 0);
}
