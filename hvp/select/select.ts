// HVP's per-sample selection (docs/method.md §1 step 4): the hardest (argmax), easiest (argmin) or a random
// combination of each sample's scores, on the GPU (select.wgsl) so the choice can feed
// gatherSelected without a readback.

import { defineKernel, type Engine, type Rng, type Tensor } from '../../engine/index.js';
import { gather, reshape, sum } from '../../engine/ops/index.js';
import source from './select.wgsl';
import { withContiguous } from './common.js';

export { drawLimit } from './combinations.js';

/** Which combination a sample keeps: the highest score, the lowest, or a random one. */
export type SelectMode = 'hardest' | 'easiest' | 'random';
/** Every selection mode. */
export const SELECT_MODES: readonly SelectMode[] = ['hardest', 'easiest', 'random'];

/** One thread per sample; EASIEST picks argmin instead of argmax. */
const kernel = defineKernel({
  name: 'select_argmax',
  source,
  workgroupSize: 256,
  uniforms: { batch: 'u32', combos: 'u32' },
  inputs: { scores: 'f32' },
  outputs: { choice: 'i32', best: 'f32' },
});

/** Each sample's chosen combination and its score. */
export interface Selection {
  /** i32 [B]: the chosen row of the combination table per sample. */
  choice: Tensor;
  /** f32 [B]: its score. */
  score: Tensor;
}

/**
 * Choose one combination per sample from scores [B, C]. `hardest`/`easiest`: argmax/argmin per row,
 * ties to the lowest index. A row holding NaN chooses its first NaN and reports a NaN score (torch.argmax's
 * rule); readSelection() turns that into an error. `random`: uniform draws on the CPU from `rng`
 * (required), uploaded.
 */
export function selectCombination(scores: Tensor, mode: SelectMode, rng?: Rng): Selection {
  const op = 'selectCombination';
  if (scores.dtype !== 'f32' || scores.ndim !== 2 || scores.shape[1] < 1) {
    throw new Error(`${op}: scores must be f32 [B, C] with C ≥ 1, got ${scores}`);
  }
  if (!SELECT_MODES.includes(mode)) throw new Error(`${op}: mode must be one of ${SELECT_MODES.join(', ')}, got '${mode}'`);
  const [b, c] = scores.shape;
  const engine = scores.engine;
  if (mode === 'random') {
    if (!rng) throw new Error(`${op}: 'random' selection needs an Rng`);
    const choice = randomChoice(engine, b, c, rng);
    const score = engine.scope(() => engine.noGrad(() => reshape(gather(scores, 1, reshape(choice, [b, 1])), [b])));
    return { choice, score };
  }
  const choice = engine.empty([b], 'i32');
  const score = engine.empty([b]);
  withContiguous([scores], ([s]) =>
    kernel.launch({
      inputs: [s],
      outputs: [choice, score],
      uniforms: { batch: b, combos: c },
      grid: { invocations: b },
      defines: { EASIEST: mode === 'easiest' },
    }),
  );
  return { choice, score };
}

/**
 * i32 [B] of combination indices drawn uniformly per sample on the CPU (b draws of rng.int(count)),
 * uploaded: the `random` selection without scores, when no selection forward runs.
 */
export function randomChoice(engine: Engine, batch: number, count: number, rng: Rng): Tensor {
  return engine.tensor(randomDraws(batch, count, rng), [batch], { dtype: 'i32' });
}

/** The draws randomChoice uploads, on the CPU (a step split into micro-batches hands each its share). */
export function randomDraws(batch: number, count: number, rng: Rng): number[] {
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(count) || count < 1) {
    throw new Error(`randomChoice: batch and combination count must be positive integers, got ${batch} and ${count}`);
  }
  return Array.from({ length: batch }, () => rng.int(count));
}

/** The selection on the CPU (for logs and the CLI). Throws, naming the samples, if any score is NaN. */
export async function readSelection(sel: Selection): Promise<{ choice: Int32Array; score: Float32Array }> {
  const choice = (await sel.choice.toArray()) as Int32Array;
  const score = (await sel.score.toArray()) as Float32Array;
  const bad = [...score.keys()].filter((i) => Number.isNaN(score[i]));
  if (bad.length) {
    throw new Error(`selectCombination: NaN scores for samples ${bad.slice(0, 8).join(', ')}${bad.length > 8 ? ', ...' : ''} (the selection forward produced NaN)`);
  }
  return { choice, score };
}

/**
 * 0-d f32 sum of all scores [B, C]: non-finite when any score is NaN or ±∞, so a training loop can
 * stop on a diverged selection forward with one scalar readback (the chosen scores alone miss a −∞
 * under `hardest`, or a NaN in a sample whose argmax lies elsewhere).
 */
export function scoreSum(scores: Tensor): Tensor {
  return scores.engine.noGrad(() => sum(scores));
}
