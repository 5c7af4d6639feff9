// Inverted dropout and drop-path (timm's stochastic depth) on one kernel (dropout.wgsl). The
// mask comes from a counter-based generator keyed by a u32 seed that the caller draws from its seeded
// Rng, so runs are reproducible. The backward regenerates the mask from the same seed instead of
// storing it: hashing costs a few integer ops per element, far less than keeping a mask tensor alive
// on the tape from the forward to the backward pass.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { defineKernel, type UniformFields } from '../kernel.js';
import { checkInputs } from './map.js';
import { contiguous } from './view.js';
import source from './dropout.wgsl';

/** Which counter stream each op draws from, so one seed gives the two ops unrelated masks. */
const STREAM = { dropout: 0, dropPath: 1 } as const;

const UNIFORMS = {
  n: 'u32',
  seed: 'u32',
  threshold: 'u32',
  scale: 'f32',
  group: 'u32',
  stream: 'u32',
} satisfies UniformFields;

/** One declaration; each launch is named by its op and direction, so that profiles name them apart. */
const kernel = defineKernel({ name: 'dropout', source, workgroupSize: 256, uniforms: UNIFORMS, inputs: { src: 'f32' }, outputs: { out: 'f32' } });

interface Mask {
  op: keyof typeof STREAM;
  p: number;
  seed: number;
  /** Consecutive elements sharing one keep/drop decision. */
  group: number;
}

function checkArgs(op: string, p: number, seed: number): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`${op}: p must be in [0, 1], got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`${op}: seed must be a u32 (draw it with rng.u32()), got ${seed}`);
  }
}

/** x · mask / (1 − p) for the mask of `m`. No tape. */
function applyMask(name: string, x: Tensor, m: Mask): Tensor {
  const engine = checkInputs(name, [x]);
  if (x.dtype !== 'f32') throw new Error(`${name}: expects an f32 tensor, got ${x}`);
  // The mask is indexed by the logical (row-major) element index, so forward and backward agree
  // whatever the memory layouts of x and of the gradient.
  const src = contiguous(x);
  const out = engine.empty(x.shape);
  const n = x.size;
  if (n > 0) {
    kernel.launch({
      name,
      inputs: [src],
      outputs: [out],
      uniforms: {
        n,
        seed: m.seed,
        // Dropped when the 32 random bits fall below p·2³²; p = 1 drops everything (scale 0, not ∞).
        threshold: Math.min(Math.round(m.p * 2 ** 32), 0xffffffff),
        scale: m.p >= 1 ? 0 : 1 / (1 - m.p),
        group: m.group,
        stream: STREAM[m.op],
      },
      grid: { invocations: n },
      key: '',
    });
  }
  if (src !== x) src.dispose();
  return out;
}

function masked(x: Tensor, m: Mask): Tensor {
  const out = applyMask(m.op, x, m);
  return record(out, m.op, [x], (g) => [applyMask(`${m.op}_backward`, g, m)]);
}

/**
 * Zero each element with probability p and scale the survivors by 1/(1 − p) (torch's F.dropout).
 * With p = 0 or training = false, x itself is returned.
 */
export function dropout(x: Tensor, p: number, seed: number, training = true): Tensor {
  checkArgs('dropout', p, seed);
  if (!training || p === 0) return x;
  return masked(x, { op: 'dropout', p, seed, group: 1 });
}

/**
 * Stochastic depth (timm's drop_path): zero whole samples (slices along axis 0) with probability p
 * and scale the survivors by 1/(1 − p). With p = 0 or training = false, x itself is returned.
 */
export function dropPath(x: Tensor, p: number, seed: number, training = true): Tensor {
  checkArgs('dropPath', p, seed);
  if (x.ndim === 0) throw new Error(`dropPath: needs a batch axis, got ${x}`);
  if (!training || p === 0) return x;
  return masked(x, { op: 'dropPath', p, seed, group: Math.max(x.size / Math.max(x.shape[0], 1), 1) });
}
