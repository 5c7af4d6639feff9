// Training-step throughput of the networks: forward + backward + SGD of the small-image ResNet-18
// and of ViT-tiny/4 at batch 64 on 32×32 inputs, with the step's peak GPU memory (pool bytes in use).

import { Engine, nn, ops, optim, Rng, type Tensor } from '../../engine/index.js';
import { resnet18, vitTiny } from '../../models/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { timeGpu } from '../timing.js';

interface Net {
  module: nn.Module;
  forward: (x: Tensor) => Tensor;
}

/**
 * A training step of `name`. By default an extended case timed over three steps (whole batch-64
 * steps take ~45 s each on lavapipe; the HVP-step cases cover training speed); `oneStep` makes it a
 * default case of a single timed step, there for its peak memory, which does not vary from step to step.
 */
function stepCase(name: string, build: (engine: Engine, rng: Rng) => Net, batch: number, quick: boolean, oneStep = false): BenchCase {
  return {
    name: `train step ${name}${oneStep ? ' (one step, peak memory)' : ''}`,
    shape: `batch ${batch}, 3x32x32`,
    quick,
    extended: !oneStep,
    images: batch,
    // The untimed step below already warms up; three timed steps bound a full bench run on lavapipe.
    reps: { warmup: 0, reps: oneStep ? 1 : 3 },
    ours: async ({ engine, time }: BenchContext) => {
      const rng = new Rng(3);
      const net = build(engine, rng);
      net.module.train();
      const opt = new optim.SGD(net.module.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
      const x = engine.randn([batch, 3, 32, 32], rng);
      const labels = engine.tensor(Array.from({ length: batch }, (_, i) => i % 10), [batch], { dtype: 'i32' });
      const step = () => {
        engine.scope(() => {
          ops.crossEntropy(net.forward(x), labels).backward();
          opt.step();
          net.module.zeroGrad();
        });
        return () => {};
      };
      // One step outside the timing to create optimizer state and fill the pool.
      step();
      await engine.sync();
      engine.backend.pool.resetPeak();
      const t = await timeGpu(step, () => engine.sync(), time);
      const peak = engine.backend.memory().peakBytesInUse;
      x.dispose();
      labels.dispose();
      for (const p of net.module.parameters()) p.dispose();
      for (const [, b] of net.module.namedBuffers()) b.dispose();
      return { ...t, peakBytes: peak };
    },
  };
}

function vitTiny4(engine: Engine, rng: Rng): Net {
  const m = vitTiny(engine, { patchSize: 4, imgSize: 32, numClasses: 10 }, rng);
  return { module: m, forward: (x) => m.forward(x) };
}

export const modelCases: BenchCase[] = [
  stepCase(
    'resnet18 small-image',
    (engine, rng) => {
      const m = resnet18(engine, { inChannels: 3, smallImage: true, numClasses: 10 }, rng);
      return { module: m, forward: (x) => m.forward(x) };
    },
    64,
    false,
  ),
  stepCase('vit_tiny/4', vitTiny4, 64, false),
  // The memory target (ViT-tiny/4 at batch 64) belongs in every full run, at the cost of two steps.
  stepCase('vit_tiny/4', vitTiny4, 64, false, true),
];
