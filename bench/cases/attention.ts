// Attention at ViT shapes: our fused scaled-dot-product attention against tfjs composed from
// matMul, softmax and matMul (tfjs has no fused attention), forward and forward + backward.

import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import { ops, Rng } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import type { Tf } from '../peers/tfjs.js';
import { timeOurs, timeTfjs, TFJS } from './common.js';

export interface AttnShape {
  model: string;
  b: number;
  h: number;
  n: number;
  d: number;
  quick: boolean;
}

/** softmax(q·kᵀ·scale)·v over [B·H, N, d] from tfjs ops (the scores are materialised); scale is a scalar tensor. */
export function tfjsAttention(tf: Tf, q: TfTensor, k: TfTensor, v: TfTensor, scale: TfTensor): TfTensor {
  return tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), scale)), v);
}

export function attentionCase(s: AttnShape, backward: boolean): BenchCase {
  const forwardFlops = 4 * s.b * s.h * s.n * s.n * s.d;
  // The backward's four GEMMs (dV, dP, dQ, dK) count twice the forward's two; the fused kernel also
  // recomputes q·kᵀ, which is not counted, as it is not work the math requires.
  const flops = forwardFlops * (backward ? 3 : 1);
  return {
    name: backward ? 'attention fwd+bwd' : 'attention fwd',
    shape: `B=${s.b} H=${s.h} N=${s.n} d=${s.d} (${s.model})`,
    quick: s.quick,
    flops,
    reps: flops > 1e9 ? { warmup: 1 } : undefined,
    ours: async (ctx: BenchContext) => {
      const rng = new Rng(7);
      const qkv = [0, 1, 2].map(() => ctx.engine.randn([s.b, s.h, s.n, s.d], rng));
      qkv.forEach((t) => (t.requiresGrad = backward));
      const t = await timeOurs(
        ctx,
        () => {
          const y = ops.scaledDotProductAttention(qkv[0], qkv[1], qkv[2]);
          if (!backward) return [y];
          y.backward(ctx.engine.ones(y.shape));
          return [];
        },
        qkv,
      );
      qkv.forEach((p) => p.dispose());
      return t;
    },
    peer: {
      name: TFJS,
      run: async (ctx: BenchContext) => {
        const tf = ctx.tfjs!.tf;
        const [q, k, v] = [0, 1, 2].map(() => tf.randomNormal([s.b * s.h, s.n, s.d]));
        const scale = tf.scalar(1 / Math.sqrt(s.d));
        const f = (a: TfTensor, b: TfTensor, c: TfTensor) => tfjsAttention(tf, a, b, c, scale);
        const grads = tf.grads((a, b, c) => f(a, b, c));
        const t = await timeTfjs(ctx, () => (backward ? grads([q, k, v]) : [f(q, k, v)]));
        [q, k, v, scale].forEach((p) => p.dispose());
        return t;
      },
    },
  };
}

const SHAPES: AttnShape[] = [
  // The project's ViT-tiny/4 on 32×32 crops (64 patches + class token).
  { model: 'vit_tiny/4 32px', b: 16, h: 3, n: 65, d: 64, quick: true },
  // ViT-tiny/16 and ViT-small/16 on 224×224 (196 patches + class token).
  { model: 'vit_tiny/16 224px', b: 8, h: 3, n: 197, d: 64, quick: false },
  { model: 'vit_small/16 224px', b: 8, h: 6, n: 197, d: 64, quick: false },
];

export const attentionCases: BenchCase[] = SHAPES.flatMap((s) => [attentionCase(s, false), attentionCase(s, true)]);
