// conv2d forward and forward + backward (dX and dW) at ResNet layer shapes, against tfjs's conv2d
// (NHWC, its native layout) and tf.grads of it.

import { ops, Rng } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { timeGpu } from '../timing.js';

interface ConvShape {
  n: number;
  ci: number;
  co: number;
  hw: number;
  k: number;
  stride: number;
  quick: boolean;
}

function describe(s: ConvShape): string {
  return `${s.n}x${s.ci}x${s.hw}x${s.hw} k${s.k} s${s.stride} -> ${s.co}`;
}

function convFlops(s: ConvShape): number {
  const out = Math.floor((s.hw + 2 * Math.floor(s.k / 2) - s.k) / s.stride) + 1;
  return 2 * s.n * s.co * out * out * s.ci * s.k * s.k;
}

function convCase(s: ConvShape, backward: boolean): BenchCase {
  const pad = Math.floor(s.k / 2);
  return {
    name: backward ? 'conv2d fwd+bwd' : 'conv2d fwd',
    shape: describe(s),
    quick: s.quick,
    // forward + the two backward GEMMs (dX, dW), each as many multiply-adds as the forward
    flops: convFlops(s) * (backward ? 3 : 1),
    ours: async ({ engine, time }: BenchContext) => {
      const rng = new Rng(2);
      const x = engine.randn([s.n, s.ci, s.hw, s.hw], rng);
      const w = engine.randn([s.co, s.ci, s.k, s.k], rng, 0.05);
      x.requiresGrad = backward;
      w.requiresGrad = backward;
      const t = await timeGpu(
        () => {
          const kept = engine.scope(() => {
            const y = ops.conv2d(x, w, null, { stride: s.stride, padding: pad });
            if (!backward) return [y];
            y.backward(engine.ones(y.shape));
            return [];
          });
          return () => {
            kept.forEach((k) => k.dispose());
            for (const p of [x, w]) {
              p.grad?.dispose();
              p.grad = null;
            }
          };
        },
        () => engine.sync(),
        time,
      );
      x.dispose();
      w.dispose();
      return t;
    },
    peer: {
      name: 'tfjs-webgpu',
      run: async ({ tfjs, time }: BenchContext) => {
        const { tf, done } = tfjs!;
        const x = tf.randomNormal([s.n, s.hw, s.hw, s.ci]) as import('@tensorflow/tfjs-core').Tensor4D;
        const w = tf.randomNormal([s.k, s.k, s.ci, s.co], 0, 0.05) as import('@tensorflow/tfjs-core').Tensor4D;
        const f = (a: import('@tensorflow/tfjs-core').Tensor4D, b: import('@tensorflow/tfjs-core').Tensor4D) =>
          tf.conv2d(a, b, s.stride, pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
        const grads = tf.grads((a, b) => f(a as typeof x, b as typeof w));
        const t = await timeGpu(
          () => {
            const out = backward ? grads([x, w]) : [f(x, w)];
            return () => out.forEach((o) => o.dispose());
          },
          done,
          time,
        );
        x.dispose();
        w.dispose();
        return t;
      },
    },
  };
}

const SHAPES: ConvShape[] = [
  // The engine issue's reference shape: a ResNet-18 (small-image) stage at batch 64.
  { n: 64, ci: 32, co: 64, hw: 32, k: 3, stride: 1, quick: true },
];

export const convCases: BenchCase[] = SHAPES.flatMap((s) => [convCase(s, false), convCase(s, true)]);
