// conv2d forward and forward + backward (dX and dW) at ResNet-18 and ResNet-50 layer shapes (224²
// inputs) and at the demo's narrow small-image ResNet-18 (1-channel 28×28 views, widths 8/16/32/64,
// batch 64), against tfjs's conv2d (NHWC, its native layout) and tf.grads of it.

import type { Tensor4D } from '@tensorflow/tfjs-core';
import { ops, Rng, type Tensor } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { perRepetition, timeOurs, timeTfjs, TFJS } from './common.js';

interface ConvShape {
  /** The layer it is, e.g. 'r18 conv3_1'. */
  layer: string;
  n: number;
  ci: number;
  co: number;
  hw: number;
  k: number;
  stride: number;
  quick: boolean;
}

function describe(s: ConvShape): string {
  return `${s.n}x${s.ci}x${s.hw}x${s.hw} k${s.k} s${s.stride} -> ${s.co} (${s.layer})`;
}

/** Output height and width (the cases pad by half the kernel). */
function outSize(s: ConvShape): number {
  return Math.floor((s.hw + 2 * Math.floor(s.k / 2) - s.k) / s.stride) + 1;
}

function convFlops(s: ConvShape): number {
  const out = outSize(s);
  return 2 * s.n * s.co * out * out * s.ci * s.k * s.k;
}

/** A run does at least this much work (see perRepetition): the demo's 1×1 shortcuts are 3-7 MFLOP. */
const MIN_RUN_FLOPS = 30e6;
const MAX_REPETITIONS = 16;
/** Timed runs of the cases that repeat their work (see convCase's reps). */
const SMALL_CASE_REPS = 15;

function convCase(s: ConvShape, backward: boolean): BenchCase {
  const pad = Math.floor(s.k / 2);
  const flops = convFlops(s) * (backward ? 3 : 1);
  const times = Math.min(MAX_REPETITIONS, Math.max(1, Math.ceil(MIN_RUN_FLOPS / flops)));
  return {
    name: backward ? 'conv2d fwd+bwd' : 'conv2d fwd',
    shape: describe(s),
    quick: s.quick,
    // forward + the two backward GEMMs (dX, dW), each as many multiply-adds as the forward
    flops,
    // Above ~1 GFLOP a run takes a fair fraction of a second here and the peer's several times that.
    // The repeated small cases take a millisecond or two a run, where one burst of a neighbour's work
    // on a shared 2-core machine moves a median of 5 by half: they take the median of 15.
    reps: flops > 1e9 ? { warmup: 1 } : times > 1 ? { reps: SMALL_CASE_REPS } : undefined,
    ours: async (ctx: BenchContext) => {
      const rng = new Rng(2);
      const x = ctx.engine.randn([s.n, s.ci, s.hw, s.hw], rng);
      const w = ctx.engine.randn([s.co, s.ci, s.k, s.k], rng, 0.05);
      x.requiresGrad = backward;
      w.requiresGrad = backward;
      // The output gradient is made once, outside the timing: a run times the convolution's kernels.
      const dy = backward ? ctx.engine.ones([s.n, s.co, outSize(s), outSize(s)]) : null;
      const t = await timeOurs(
        ctx,
        () => {
          const out: Tensor[] = [];
          for (let i = 0; i < times; i++) {
            const y = ops.conv2d(x, w, null, { stride: s.stride, padding: pad });
            if (!backward) out.push(y);
            else {
              y.backward(dy!);
              // Each repetition makes fresh gradients rather than adding into the last ones.
              for (const p of [x, w]) {
                p.grad?.dispose();
                p.grad = null;
              }
            }
          }
          return out;
        },
        [x, w],
      );
      x.dispose();
      w.dispose();
      dy?.dispose();
      return perRepetition(t, times);
    },
    peer: {
      name: TFJS,
      run: async (ctx: BenchContext) => {
        const tf = ctx.tfjs!.tf;
        const x = tf.randomNormal([s.n, s.hw, s.hw, s.ci]) as Tensor4D;
        const w = tf.randomNormal([s.k, s.k, s.ci, s.co], 0, 0.05) as Tensor4D;
        const f = (a: Tensor4D, b: Tensor4D) =>
          tf.conv2d(a, b, s.stride, pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
        const grads = tf.grads((a, b) => f(a as Tensor4D, b as Tensor4D));
        const t = await timeTfjs(ctx, () => Array.from({ length: times }, () => (backward ? grads([x, w]) : [f(x, w)])).flat());
        x.dispose();
        w.dispose();
        return perRepetition(t, times);
      },
    },
  };
}

/**
 * Batch 2 keeps a ResNet-18 3×3 layer (0.23 GFLOP per image forward) under 0.5 s forward + backward
 * on lavapipe and the peer's under ~2 s, which bounds the full run.
 */
const SHAPES: ConvShape[] = [
  { layer: 'r18 conv2_x', n: 2, ci: 64, co: 64, hw: 56, k: 3, stride: 1, quick: true },
  { layer: 'r18 conv3_1, stride-2 entry', n: 2, ci: 64, co: 128, hw: 56, k: 3, stride: 2, quick: false },
  { layer: 'r18 conv3_x', n: 2, ci: 128, co: 128, hw: 28, k: 3, stride: 1, quick: false },
  { layer: 'r18 conv4_x', n: 2, ci: 256, co: 256, hw: 14, k: 3, stride: 1, quick: false },
  { layer: 'r18 conv5_x', n: 2, ci: 512, co: 512, hw: 7, k: 3, stride: 1, quick: false },
  { layer: 'r50 conv2 1x1 reduce', n: 2, ci: 256, co: 64, hw: 56, k: 1, stride: 1, quick: false },
  { layer: 'r50 conv2 1x1 expand', n: 2, ci: 64, co: 256, hw: 56, k: 1, stride: 1, quick: false },
  { layer: 'r50 conv4 1x1 reduce', n: 2, ci: 1024, co: 256, hw: 14, k: 1, stride: 1, quick: false },
  { layer: 'r50 conv5 1x1 expand', n: 2, ci: 512, co: 2048, hw: 7, k: 1, stride: 1, quick: false },
  // A small-image ResNet-18 stage (32 → 64 channels at 32 px), at batch 16: at batch 64 tfjs's backward
  // alone took 20 s a run under load.
  { layer: 'small-image r18', n: 16, ci: 32, co: 64, hw: 32, k: 3, stride: 1, quick: false },
  // The demo's network, every distinct layer at its batch of 64: the stem (3×3 stride 1, no max-pool),
  // each stage's stride-2 entry, 3×3 body and 1×1 stride-2 shortcut.
  { layer: 'demo stem', n: 64, ci: 1, co: 8, hw: 28, k: 3, stride: 1, quick: false },
  { layer: 'demo layer1', n: 64, ci: 8, co: 8, hw: 28, k: 3, stride: 1, quick: true },
  { layer: 'demo layer2 entry', n: 64, ci: 8, co: 16, hw: 28, k: 3, stride: 2, quick: false },
  { layer: 'demo layer2', n: 64, ci: 16, co: 16, hw: 14, k: 3, stride: 1, quick: false },
  { layer: 'demo layer2 shortcut', n: 64, ci: 8, co: 16, hw: 28, k: 1, stride: 2, quick: false },
  { layer: 'demo layer3 entry', n: 64, ci: 16, co: 32, hw: 14, k: 3, stride: 2, quick: false },
  { layer: 'demo layer3', n: 64, ci: 32, co: 32, hw: 7, k: 3, stride: 1, quick: false },
  { layer: 'demo layer3 shortcut', n: 64, ci: 16, co: 32, hw: 14, k: 1, stride: 2, quick: false },
  { layer: 'demo layer4 entry', n: 64, ci: 32, co: 64, hw: 7, k: 3, stride: 2, quick: false },
  { layer: 'demo layer4', n: 64, ci: 64, co: 64, hw: 4, k: 3, stride: 1, quick: false },
  { layer: 'demo layer4 shortcut', n: 64, ci: 32, co: 64, hw: 7, k: 1, stride: 2, quick: false },
];

export const convCases: BenchCase[] = SHAPES.flatMap((s) => [convCase(s, false), convCase(s, true)]);
