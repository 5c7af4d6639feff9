// matmul: square sizes and the MLP-head shapes, against tfjs's matMul.

import { ops, Rng } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { timeGpu } from '../timing.js';

function matmulCase(m: number, k: number, n: number, quick: boolean): BenchCase {
  return {
    name: 'matmul',
    shape: `${m}x${k} @ ${k}x${n}`,
    quick,
    flops: 2 * m * k * n,
    ours: async ({ engine, time }: BenchContext) => {
      const rng = new Rng(1);
      const a = engine.randn([m, k], rng);
      const b = engine.randn([k, n], rng);
      const t = await timeGpu(
        () => {
          const c = ops.matmul(a, b);
          return () => c.dispose();
        },
        () => engine.sync(),
        time,
      );
      a.dispose();
      b.dispose();
      return t;
    },
    peer: {
      name: 'tfjs-webgpu',
      run: async ({ tfjs, time }: BenchContext) => {
        const { tf, done } = tfjs!;
        const a = tf.randomNormal([m, k]);
        const b = tf.randomNormal([k, n]);
        const t = await timeGpu(
          () => {
            const c = tf.matMul(a, b);
            return () => c.dispose();
          },
          done,
          time,
        );
        a.dispose();
        b.dispose();
        return t;
      },
    },
  };
}

export const matmulCases: BenchCase[] = [matmulCase(1024, 1024, 1024, true)];
