// Gradient clipping entirely on the GPU: per-gradient partial sums of squares into one small buffer
// (grad-norm.wgsl), one kernel turning them into norms and clip factors, then each gradient
// scaled in place by its factor (update.wgsl). The norms come back as a tensor the caller may
// await; nothing waits for them.

import type { Tensor } from '../engine.js';
import { alias } from '../ops/view.js';
import { checkInputs } from '../ops/map.js';
import { defineKernel } from '../kernel.js';
import { dispatchUpdate } from './update.js';
import source from './grad-norm.wgsl';

const WG = 256;

/** Each workgroup sums the squares of its grid-stride share of one gradient into its own slot. */
const partialKernel = defineKernel({
  name: 'grad_norm_partial',
  source,
  workgroupSize: WG,
  uniforms: {
    n: 'u32', // elements of this gradient
    slot: 'u32', // first slot of this gradient
  },
  inputs: { grad: 'f32' },
  outputs: { partial: 'f32' },
  // The template needs a value for every name, PER_TENSOR included, though only the other branch reads it.
  defines: { PARTIAL: true, PER_TENSOR: false },
});

/** Norms, then clip factors (one per gradient with PER_TENSOR, else one for all). */
const normKernel = defineKernel({
  name: 'grad_norm',
  source,
  workgroupSize: WG,
  uniforms: {
    n: 'u32', // number of gradients
    slots: 'u32', // slots per gradient
    max_norm: 'f32',
  },
  inputs: { partial: 'f32' },
  outputs: { stats: 'f32' },
  defines: { PARTIAL: false },
});
/** Elements one workgroup sums before another is worth launching (16 per thread). */
const PER_WORKGROUP = WG * 16;
/** Cap on workgroups per gradient: beyond it the grid-stride loop makes each thread sum more. */
const MAX_SLOTS = 256;

/**
 * torch.nn.utils.clip_grad_norm_: scale every gradient by min(1, maxNorm / (‖g‖ + 1e-6)) with ‖g‖ the
 * L2 norm of all gradients together. Returns that norm (before clipping) as a 0-d tensor.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  return clip('clipGradNorm', params, maxNorm, false);
}

/**
 * DINO's utils.clip_gradients: each gradient is clipped by its own norm. Returns the norms before
 * clipping, one per parameter that has a gradient, as a 1-d tensor.
 */
export function clipGradients(params: Tensor[], maxNorm: number): Tensor {
  return clip('clipGradients', params, maxNorm, true);
}

function clip(op: string, params: Tensor[], maxNorm: number, perTensor: boolean): Tensor {
  if (params.length === 0) throw new Error(`${op}: no parameters given`);
  if (!(maxNorm > 0)) throw new Error(`${op}: maxNorm must be positive, got ${maxNorm}`);
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  const engine = checkInputs(op, [params[0], ...grads]);
  for (const g of grads) {
    if (!g.isContiguous() || g.dtype !== 'f32') throw new Error(`${op}: gradient ${g} must be a contiguous f32 tensor`);
  }
  const count = perTensor ? grads.length : 1;
  if (grads.length === 0) return perTensor ? engine.zeros([0]) : engine.zeros([]);

  const wgs = grads.map((g) => Math.min(Math.max(Math.ceil(g.size / PER_WORKGROUP), 1), MAX_SLOTS));
  const slots = Math.max(...wgs);
  const partial = engine.zeros([grads.length * slots]);
  grads.forEach((g, i) => {
    partialKernel.launch({ inputs: [g], outputs: [partial], uniforms: { n: g.size, slot: i * slots }, workgroups: [wgs[i]] });
  });

  // Norms first, then the factors; an infinite maxNorm only measures (f32 cannot carry it to the shader).
  const stats = engine.empty([2 * count]);
  normKernel.launch({
    inputs: [partial],
    outputs: [stats],
    uniforms: { n: grads.length, slots, max_norm: Math.min(maxNorm, 3.4e38) },
    workgroups: [perTensor ? Math.ceil(count / WG) : 1],
    defines: { PER_TENSOR: perTensor },
  });
  partial.dispose();
  if (Number.isFinite(maxNorm)) {
    grads.forEach((g, i) => dispatchUpdate('clip_scale', g, stats, [], {}, count + (perTensor ? i : 0)));
  }
  const norms = alias(stats, perTensor ? [count] : [], perTensor ? [1] : [], 0);
  stats.dispose();
  return norms;
}
