// matmul: square sizes and the MLP-head shapes, against tfjs's matMul. Its best GFLOP/s in a run is
// the compute peak the other compute-bound cases are placed against.

import { ops, Rng } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { MATMUL_CASE } from '../report.js';
import { timeOurs, timeTfjs, TFJS } from './common.js';

export function matmulCase(m: number, k: number, n: number, quick: boolean, what = ''): BenchCase {
  const flops = 2 * m * k * n;
  return {
    name: MATMUL_CASE,
    shape: `${m}x${k} @ ${k}x${n}${what ? ` (${what})` : ''}`,
    quick,
    flops,
    // Above ~4 GFLOP a run takes seconds on lavapipe (the peer's several): one warm-up is enough.
    reps: flops > 4e9 ? { warmup: 1 } : undefined,
    ours: async (ctx: BenchContext) => {
      const rng = new Rng(1);
      const a = ctx.engine.randn([m, k], rng);
      const b = ctx.engine.randn([k, n], rng);
      const t = await timeOurs(ctx, () => [ops.matmul(a, b)]);
      a.dispose();
      b.dispose();
      return t;
    },
    peer: {
      name: TFJS,
      run: async (ctx: BenchContext) => {
        const tf = ctx.tfjs!.tf;
        const a = tf.randomNormal([m, k]);
        const b = tf.randomNormal([k, n]);
        const t = await timeTfjs(ctx, () => [tf.matMul(a, b)]);
        a.dispose();
        b.dispose();
        return t;
      },
    },
  };
}

export const matmulCases: BenchCase[] = [
  matmulCase(256, 256, 256, false),
  matmulCase(512, 512, 512, true),
  matmulCase(1024, 1024, 1024, true),
  matmulCase(2048, 2048, 2048, false),
  // Projection-head MLPs at batch 512 (2048-wide hidden layer) and a head on ViT-small's 384-d features.
  matmulCase(512, 2048, 2048, false, 'mlp head hidden'),
  matmulCase(512, 2048, 512, false, 'mlp head out'),
  matmulCase(256, 384, 2048, false, 'mlp head in, vit_small'),
];
