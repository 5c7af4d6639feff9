// Memory-bound row kernels, in GB/s of the bytes they must move (of_peak: against the run's best
// copy): layer norm over ViT token rows and softmax over ViT attention-score rows.

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

/** layer norm over the last axis of [rows, d] with affine weight and bias, ViT's pre-norm. */
export function layerNormCase(rows: number, d: number, what: string, quick: boolean): BenchCase {
  return {
    name: 'layer_norm',
    shape: `${rows}x${d} (${what})`,
    quick,
    // read x, write y, read weight and bias
    bytes: (2 * rows * d + 2 * d) * 4,
    ours: async (ctx: BenchContext) => {
      const rng = new Rng(5);
      const [x, w, b] = [ctx.engine.randn([rows, d], rng), ctx.engine.randn([d], rng), ctx.engine.randn([d], rng)];
      const t = await timeOurs(ctx, () => [ops.layerNorm(x, w, b)]);
      [x, w, b].forEach((p) => p.dispose());
      return t;
    },
    peer: {
      name: TFJS,
      run: async (ctx: BenchContext) => {
        const tf = ctx.tfjs!.tf;
        const [x, w, b] = [tf.randomNormal([rows, d]), tf.randomNormal([1, d]), tf.randomNormal([1, d])];
        const t = await timeTfjs(ctx, () => [tfjsLayerNorm(tf, x, w, b)]);
        [x, w, b].forEach((p) => p.dispose());
        return t;
      },
    },
  };
}

/** softmax over the last axis of [rows, n]: attention probabilities of rows/n query rows. */
export function softmaxCase(rows: number, n: number, what: string, quick: boolean): BenchCase {
  return {
    name: 'softmax',
    shape: `${rows}x${n} (${what})`,
    quick,
    bytes: 2 * rows * n * 4,
    ours: async (ctx: BenchContext) => {
      const x = ctx.engine.randn([rows, n], new Rng(6));
      const t = await timeOurs(ctx, () => [ops.softmax(x, -1)]);
      x.dispose();
      return t;
    },
    peer: {
      name: TFJS,
      run: async (ctx: BenchContext) => {
        const tf = ctx.tfjs!.tf;
        const x = tf.randomNormal([rows, n]);
        const t = await timeTfjs(ctx, () => [tf.softmax(x, -1)]);
        x.dispose();
        return t;
      },
    },
  };
}

export const normCases: BenchCase[] = [
  layerNormCase(64 * 65, 192, 'vit_tiny/4 tokens, batch 64', true),
  layerNormCase(32 * 197, 384, 'vit_small/16 tokens, batch 32', false),
  softmaxCase(64 * 3 * 65, 65, 'vit_tiny/4 scores, batch 64', true),
  softmaxCase(16 * 6 * 197, 197, 'vit_small/16 scores, batch 16', false),
];
