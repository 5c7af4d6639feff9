// Gradient clipping entirely on the GPU: per-gradient partial sums of squares into one small buffer
// (shaders/grad_norm.wgsl), one kernel turning them into norms and clip factors, then each gradient
// scaled in place by its factor (shaders/optim.wgsl). The norms come back as a tensor the caller may
// await; nothing waits for them.

import type { Tensor } from '../tensor.js';
import { alias } from '../ops/view.js';
import { checkInputs } from '../ops/map.js';
import { dispatchUpdate } from './kernel.js';
import source from '../../shaders/grad_norm.wgsl';

const WG = 256;
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
  const u = new Uint32Array(5);
  const f = new Float32Array(u.buffer);
  grads.forEach((g, i) => {
    u.set([g.size, g.offset, i * slots, slots]);
    engine.backend.dispatch({
      kernel: { name: `${op}_partial`, source, defines: { PARTIAL: true, PER_TENSOR: perTensor } },
      inputs: [g.buffer],
      outputs: [partial.buffer],
      uniforms: u,
      workgroups: [wgs[i]],
    });
  });

  // Norms first, then the factors; an infinite maxNorm only measures (f32 cannot carry it to the shader).
  const stats = engine.empty([2 * count]);
  u.set([grads.length, 0, 0, slots]);
  f[4] = Math.min(maxNorm, 3.4e38);
  engine.backend.dispatch({
    kernel: { name: `${op}_norm`, source, defines: { PARTIAL: false, PER_TENSOR: perTensor } },
    inputs: [partial.buffer],
    outputs: [stats.buffer],
    uniforms: u,
    workgroups: [perTensor ? Math.ceil(count / WG) : 1],
  });
  partial.dispose();
  if (Number.isFinite(maxNorm)) {
    grads.forEach((g, i) => dispatchUpdate('clip_scale', g, stats, [], {}, count + (perTensor ? i : 0)));
  }
  const norms = alias(stats, perTensor ? [count] : [], perTensor ? [1] : [], 0);
  stats.dispose();
  return norms;
}
