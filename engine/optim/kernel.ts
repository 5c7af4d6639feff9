// The launcher shared by the optimizers, the EMA and gradient clipping: one dispatch of
// shaders/optim.wgsl updating `target` in place from `src` (and the optimizer state buffers).

import type { Tensor } from '../tensor.js';
import { grid1d } from '../runtime.js';
import source from '../../shaders/optim.wgsl';

export type UpdateKind = 'sgd' | 'sgd_momentum' | 'adamw' | 'ema' | 'clip_scale';

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

const WG = 256;

/** Update `target` (contiguous, any offset) in place; `state` buffers are the optimizer's own (offset 0). */
export function dispatchUpdate(kind: UpdateKind, target: Tensor, src: Tensor, state: Tensor[], s: UpdateScalars, srcOffset = src.offset): void {
  const n = target.size;
  const [gx, gy] = grid1d(Math.ceil(n / WG));
  const u = new Uint32Array(13);
  const f = new Float32Array(u.buffer);
  u[0] = n;
  u[1] = gx * WG;
  u[2] = target.offset;
  u[3] = srcOffset;
  f[4] = s.lr ?? 0;
  f[5] = s.weightDecay ?? 0;
  f[6] = s.momentum ?? 0;
  u[7] = s.nesterov ? 1 : 0;
  f[8] = s.beta1 ?? 0;
  f[9] = s.beta2 ?? 0;
  f[10] = s.eps ?? 0;
  f[11] = s.stepSize ?? 0;
  f[12] = s.bc2Rsqrt ?? 0;
  target.engine.backend.dispatch({
    kernel: {
      name: kind,
      source,
      defines: {
        SGD: kind.startsWith('sgd'),
        ADAMW: kind === 'adamw',
        EMA: kind === 'ema',
        STATE1: state.length > 0,
        STATE2: state.length > 1,
      },
    },
    inputs: [src.buffer],
    outputs: [target.buffer, ...state.map((t) => t.buffer)],
    uniforms: u,
    workgroups: [gx, gy],
  });
}
