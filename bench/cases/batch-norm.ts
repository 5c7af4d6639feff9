// Training-mode batch norm at the demo network's shapes (narrow small-image ResNet-18 on 28 px,
// batch 64: widths 8/16/32/64 at 28², 14², 7², 4²), in GB/s of the bytes the launches must move.
// The fused end of a ResNet block, relu(bn(x) + identity), also reports the same three ops run one
// after another (`composed`) as a baseline.

import { ops, Rng, type Engine, type Tensor } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { timeOurs } from './common.js';

type Kind = 'fwd' | 'fwd+bwd' | 'add+relu fwd+bwd';

/** Passes over the activation, in tensors of x's size: what the kernels cannot avoid reading and writing. */
const PASSES: Record<Kind, number> = {
  // statistics read x; normalise reads x, writes y
  fwd: 3,
  // + gradient sums read x, g; input gradient reads x, g, writes dx
  'fwd+bwd': 8,
  // + the residual read forward; the ReLU's output read twice backward; the residual's gradient written
  'add+relu fwd+bwd': 12,
};

function operands(engine: Engine, shape: number[]) {
  const rng = new Rng(3);
  const c = shape[1];
  return {
    x: engine.randn(shape, rng),
    r: engine.randn(shape, rng),
    g: engine.randn(shape, rng),
    w: engine.randn([c], rng),
    b: engine.randn([c], rng),
    rm: engine.zeros([c]),
    rv: engine.ones([c]),
  };
}

function batchNormCase(shape: number[], kind: Kind, quick: boolean): BenchCase {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    name: `batch_norm ${kind}`,
    shape: `${shape.join('x')} (training)`,
    quick,
    bytes: PASSES[kind] * size * 4,
    ours: async (ctx: BenchContext) => {
      const o = operands(ctx.engine, shape);
      const grads = kind !== 'fwd';
      const params = [o.x, o.w, o.b, ...(kind === 'add+relu fwd+bwd' ? [o.r] : [])];
      params.forEach((p) => (p.requiresGrad = grads));
      const bn = (epilogue: { residual?: Tensor; relu?: boolean } = {}) =>
        ops.batchNorm(o.x, o.w, o.b, o.rm, o.rv, { training: true, ...epilogue });
      const run = (f: () => Tensor) => () => {
        const y = f();
        if (!grads) return [y];
        y.backward(o.g);
        return [];
      };
      const fused = kind === 'add+relu fwd+bwd' ? () => bn({ residual: o.r, relu: true }) : () => bn();
      const t = await timeOurs(ctx, run(fused), params);
      let baselines;
      if (kind === 'add+relu fwd+bwd') {
        baselines = { composed: await timeOurs(ctx, run(() => ops.relu(ops.add(bn(), o.r))), params) };
      }
      Object.values(o).forEach((p) => p.dispose());
      return { ...t, baselines };
    },
  };
}

const DEMO = [
  [64, 8, 28, 28],
  [64, 16, 14, 14],
  [64, 32, 7, 7],
  [64, 64, 4, 4],
];

export const batchNormCases: BenchCase[] = DEMO.flatMap((s, i) =>
  (['fwd', 'fwd+bwd', 'add+relu fwd+bwd'] as Kind[]).map((k) => batchNormCase(s, k, i === 0 || i === 3)),
);
