// `hvp smoke`: train a small MLP on a synthetic two-spirals problem and print its loss, end to end
// through every layer of the engine (kernels, autograd, optimizer, schedules, scopes).

import { Engine, nn, ops, optim, Rng, type Tensor } from '../engine/index.js';
import { Progress } from '../hvp/progress.js';

export interface SmokeOptions {
  steps: number;
  hidden: number;
  batch: number;
  lr: number;
  seed: number;
}

/** Two interleaved spirals: a problem a linear model cannot solve. */
function spirals(n: number, rng: Rng): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const t = 0.25 + 2.75 * rng.uniform();
    const angle = 2.2 * t + Math.PI * cls;
    x[2 * i] = t * Math.cos(angle) + 0.05 * rng.normal();
    x[2 * i + 1] = t * Math.sin(angle) + 0.05 * rng.normal();
    y[i] = cls;
  }
  return { x, y };
}

class Mlp extends nn.Module {
  readonly fc1: nn.Linear;
  readonly fc2: nn.Linear;
  readonly fc3: nn.Linear;
  constructor(engine: Engine, hidden: number, rng: Rng) {
    super();
    this.fc1 = this.registerModule('fc1', new nn.Linear(engine, 2, hidden, rng));
    this.fc2 = this.registerModule('fc2', new nn.Linear(engine, hidden, hidden, rng));
    this.fc3 = this.registerModule('fc3', new nn.Linear(engine, hidden, 2, rng));
  }
  forward(x: Tensor): Tensor {
    return this.fc3.forward(ops.relu(this.fc2.forward(ops.relu(this.fc1.forward(x)))));
  }
}

export async function smoke(opts: SmokeOptions): Promise<{ firstLoss: number; lastLoss: number; accuracy: number }> {
  const engine = await Engine.create();
  console.log(`adapter: ${engine.description}`);
  const rng = new Rng(opts.seed);
  const data = spirals(opts.batch, rng);
  const x = engine.keep(engine.tensor(data.x, [opts.batch, 2]));
  const y = engine.keep(engine.tensor(data.y, [opts.batch], { dtype: 'i32' }));
  const model = new Mlp(engine, opts.hidden, rng);
  const opt = new optim.AdamW(model.parameters(), { lr: opts.lr, weightDecay: 1e-4 });
  const lrs = optim.cosineSchedule(opts.lr, opts.lr * 0.01, 1, opts.steps, 0.05);
  const progress = new Progress('smoke', opts.steps);
  let firstLoss = NaN;
  let lastLoss = NaN;
  for (let step = 0; step < opts.steps; step++) {
    opt.setLr('all', lrs[step]);
    const loss = await engine.scopeAsync(async () => {
      const l = ops.crossEntropy(model.forward(x), y);
      l.backward();
      opt.step();
      model.zeroGrad();
      // Reading the loss every step would serialise CPU and GPU; every 20 steps is enough to watch it.
      return step % 20 === 0 || step === opts.steps - 1 ? l.item() : null;
    });
    if (loss !== null) {
      if (!Number.isFinite(loss)) throw new Error(`smoke: loss became ${loss} at step ${step}`);
      if (Number.isNaN(firstLoss)) firstLoss = loss;
      lastLoss = loss;
      progress.update(step + 1, `loss ${loss.toFixed(4)}`);
    }
  }
  progress.done();
  const accuracy = await engine.scopeAsync(async () => {
    const pred = (await ops.argmax(model.forward(x), 1).toArray()) as Int32Array;
    return pred.reduce((n, p, i) => n + (p === data.y[i] ? 1 : 0), 0) / opts.batch;
  });
  console.log(`loss ${firstLoss.toFixed(4)} -> ${lastLoss.toFixed(4)} after ${opts.steps} steps; train accuracy ${(100 * accuracy).toFixed(1)}%`);
  engine.destroy();
  return { firstLoss, lastLoss, accuracy };
}
