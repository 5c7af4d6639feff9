// The in-place updates shared by the optimizers, the EMA and gradient clipping: one dispatch of
// update.wgsl per tensor, updating `target` from `src` (and the optimizer's state tensors). Each kind
// is its own kernel declaration, with only the uniforms and state bindings it reads.

import type { Tensor } from '../engine.js';
import { defineKernel } from '../kernel.js';
import source from './update.wgsl';

export type UpdateKind = 'sgd' | 'sgd_momentum' | 'lars' | 'adamw' | 'ema' | 'clip_scale';

export interface UpdateScalars {
  lr?: number;
  weightDecay?: number;
  momentum?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  eps?: number;
  stepSize?: number;
  bc2Rsqrt?: number;
}

// The kernel API fills row_width (the grid) and off_dst, off_src (the tensors' offsets).
const base = { n: 'u32' } as const;
const variant = { SGD: false, LARS: false, ADAMW: false, EMA: false, STATE1: false };
const common = { source, workgroupSize: 256, inputs: { src: 'f32' } } as const;

const sgd = defineKernel({
  ...common,
  name: 'sgd',
  uniforms: { ...base, lr: 'f32', weight_decay: 'f32' },
  outputs: { dst: 'f32' },
  defines: { ...variant, SGD: true },
});
const sgdMomentum = defineKernel({
  ...common,
  name: 'sgd_momentum',
  uniforms: { ...base, lr: 'f32', weight_decay: 'f32', momentum: 'f32', nesterov: 'u32' },
  outputs: { dst: 'f32', state1: 'f32' },
  defines: { ...variant, SGD: true, STATE1: true },
});
const lars = defineKernel({
  ...common,
  name: 'lars',
  uniforms: { ...base, lr: 'f32', weight_decay: 'f32', momentum: 'f32' },
  // `trust`: the one-element trust ratio lars-trust.wgsl computed on the GPU.
  inputs: { src: 'f32', trust: 'f32' },
  outputs: { dst: 'f32', state1: 'f32' },
  defines: { ...variant, LARS: true },
});
const adamw = defineKernel({
  ...common,
  name: 'adamw',
  uniforms: {
    ...base,
    lr: 'f32',
    weight_decay: 'f32',
    beta1: 'f32',
    beta2: 'f32',
    eps: 'f32',
    step_size: 'f32', // lr / (1 - beta1^t)
    bc2_rsqrt: 'f32', // 1 / sqrt(1 - beta2^t)
  },
  outputs: { dst: 'f32', state1: 'f32', state2: 'f32' },
  defines: { ...variant, ADAMW: true },
});
const ema = defineKernel({
  ...common,
  name: 'ema',
  uniforms: { ...base, momentum: 'f32' },
  outputs: { dst: 'f32' },
  defines: { ...variant, EMA: true },
});
/** `src_index`: which element of `src` (the per-tensor scale factors) scales this tensor. */
const clipScale = defineKernel({ ...common, name: 'clip_scale', uniforms: { ...base, src_index: 'u32' }, outputs: { dst: 'f32' }, defines: variant });

/**
 * Update `target` (contiguous, any offset) in place; `state` tensors are the optimizer's own (offset 0).
 * `lars` also reads `trust` (a one-element tensor at offset 0); `clip_scale` scales by element
 * `srcIndex` of `src`.
 */
export function dispatchUpdate(kind: UpdateKind, target: Tensor, src: Tensor, state: Tensor[], s: UpdateScalars, srcIndex = 0, trust?: Tensor): void {
  const at = { n: target.size };
  const args = { inputs: [src], outputs: [target, ...state], grid: { invocations: target.size } };
  const lr = s.lr ?? 0;
  const weight_decay = s.weightDecay ?? 0;
  const momentum = s.momentum ?? 0;
  switch (kind) {
    case 'sgd':
      return sgd.launch({ ...args, uniforms: { ...at, lr, weight_decay } });
    case 'sgd_momentum':
      return sgdMomentum.launch({ ...args, uniforms: { ...at, lr, weight_decay, momentum, nesterov: !!s.nesterov } });
    case 'lars':
      if (!trust) throw new Error('dispatchUpdate: the lars update needs its trust-ratio tensor');
      return lars.launch({ ...args, inputs: [src, trust], uniforms: { ...at, lr, weight_decay, momentum } });
    case 'adamw': {
      const { beta1 = 0, beta2 = 0, eps = 0, stepSize = 0, bc2Rsqrt = 0 } = s;
      return adamw.launch({ ...args, uniforms: { ...at, lr, weight_decay, beta1, beta2, eps, step_size: stepSize, bc2_rsqrt: bc2Rsqrt } });
    }
    case 'ema':
      return ema.launch({ ...args, uniforms: { ...at, momentum } });
    case 'clip_scale':
      return clipScale.launch({ ...args, uniforms: { ...at, src_index: srcIndex } });
  }
}
