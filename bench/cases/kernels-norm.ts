// Memory-bound row kernels, in GB/s of the bytes they must move (of_peak: against the run's best
// copy): layer norm over ViT token rows and softmax over ViT attention-score rows, forward and
// forward + backward, against tfjs (its layer norm as tfjs-layers builds it, and tf.grads).

import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import { ops, Rng } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import type { Tf } from '../peers/tfjs.js';
import { timeOurs, timeTfjs, TFJS } from './common.js';

/**
 * tfjs-layers' LayerNormalization of x [rows, d]: moments over the last axis, then the fused batchNorm
 * kernel, with weight and bias at the moments' rank ([1, d]).
 */
export function tfjsLayerNorm(tf: Tf, x: TfTensor, w: TfTensor, b: TfTensor, eps = 1e-5): TfTensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.batchNorm(x, mean, variance, b, w, eps);
}

/**
 * The same layer norm as elementwise ops, for tf.grads: the gradient of tfjs's batchNorm rejects
 * moments of shape [rows, 1] (it reshapes them to the input's size).
 */
export function tfjsLayerNormComposed(tf: Tf, x: TfTensor, w: TfTensor, b: TfTensor, eps = 1e-5): TfTensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), w), b);
}

/**
 * layer norm over the last axis of [rows, d] with affine weight and bias, ViT's pre-norm; `backward`
 * adds the gradients of x, weight and bias (tf.grads of tfjsLayerNormComposed on the peer's side).
 */
export function layerNormCase(rows: number, d: number, what: string, quick: boolean, backward = false): BenchCase {
  return {
    name: backward ? 'layer_norm fwd+bwd' : 'layer_norm',
    shape: `${rows}x${d} (${what})`,
    quick,
    // forward: read x, write y (weight and bias are small); backward: read x and g twice (dx, then
    // dweight and dbias), write dx
    bytes: ((backward ? 7 : 2) * rows * d + 2 * d) * 4,
    ours: async (ctx: BenchContext) => {
      const rng = new Rng(5);
      const params = [ctx.engine.randn([rows, d], rng), ctx.engine.randn([d], rng), ctx.engine.randn([d], rng)];
      params.forEach((p) => (p.requiresGrad = backward));
      const [x, w, b] = params;
      const t = await timeOurs(
        ctx,
        () => {
          const y = ops.layerNorm(x, w, b);
          if (!backward) return [y];
          y.backward(ctx.engine.ones(y.shape));
          return [];
        },
        params,
      );
      params.forEach((p) => p.dispose());
      return t;
    },
    peer: {
      name: TFJS,
      run: async (ctx: BenchContext) => {
        const tf = ctx.tfjs!.tf;
        const [x, w, b] = [tf.randomNormal([rows, d]), tf.randomNormal([1, d]), tf.randomNormal([1, d])];
        const grads = tf.grads((x, w, b) => tfjsLayerNormComposed(tf, x, w, b));
        const t = await timeTfjs(ctx, () => (backward ? grads([x, w, b]) : [tfjsLayerNorm(tf, x, w, b)]));
        [x, w, b].forEach((p) => p.dispose());
        return t;
      },
    },
  };
}

/** softmax over the last axis of [rows, n]: attention probabilities of rows/n query rows; `backward` adds dx. */
export function softmaxCase(rows: number, n: number, what: string, quick: boolean, backward = false): BenchCase {
  return {
    name: backward ? 'softmax fwd+bwd' : 'softmax',
    shape: `${rows}x${n} (${what})`,
    quick,
    // forward: read x, write y; backward: read y and g, write dx
    bytes: (backward ? 5 : 2) * rows * n * 4,
    ours: async (ctx: BenchContext) => {
      const x = ctx.engine.randn([rows, n], new Rng(6));
      x.requiresGrad = backward;
      const t = await timeOurs(
        ctx,
        () => {
          const y = ops.softmax(x, -1);
          if (!backward) return [y];
          y.backward(ctx.engine.ones(y.shape));
          return [];
        },
        [x],
      );
      x.dispose();
      return t;
    },
    peer: {
      name: TFJS,
      run: async (ctx: BenchContext) => {
        const tf = ctx.tfjs!.tf;
        const x = tf.randomNormal([rows, n]);
        const grad = tf.grad((x) => tf.softmax(x, -1));
        const t = await timeTfjs(ctx, () => [backward ? grad(x) : tf.softmax(x, -1)]);
        x.dispose();
        return t;
      },
    },
  };
}

const LN_TINY = [64 * 65, 192, 'vit_tiny/4 tokens, batch 64'] as const;
const LN_SMALL = [32 * 197, 384, 'vit_small/16 tokens, batch 32'] as const;
const SM_TINY = [64 * 3 * 65, 65, 'vit_tiny/4 scores, batch 64'] as const;
const SM_SMALL = [16 * 6 * 197, 197, 'vit_small/16 scores, batch 16'] as const;

export const normCases: BenchCase[] = [
  layerNormCase(...LN_TINY, true),
  layerNormCase(...LN_SMALL, false),
  layerNormCase(...LN_TINY, true, true),
  layerNormCase(...LN_SMALL, false, true),
  softmaxCase(...SM_TINY, true),
  softmaxCase(...SM_SMALL, false),
  softmaxCase(...SM_TINY, true, true),
  softmaxCase(...SM_SMALL, false, true),
];
