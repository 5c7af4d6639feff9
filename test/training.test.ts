// Training-level checks of the engine: modules (names, modes, checkpoints), a tiny MLP that fits two
// moons, a steady-state step that allocates nothing (no new buffers, pipelines or bind groups) and
// submits no more than a handful of command buffers, and errors on bad input that name the op and
// the shapes.

import { describe, expect, it } from 'vitest';
import { Engine, nn, ops, optim, Rng, type Tensor } from '../engine/index.js';
import { engine } from './helpers.js';

class MLP extends nn.Module {
  readonly fc1: nn.Linear;
  readonly fc2: nn.Linear;
  constructor(e: Engine, rng: Rng, hidden = 32) {
    super();
    this.fc1 = this.registerModule('fc1', new nn.Linear(e, 2, hidden, rng));
    this.fc2 = this.registerModule('fc2', new nn.Linear(e, hidden, 2, rng));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(ops.relu(this.fc1.forward(x)));
  }
}

/** sklearn's make_moons: two interleaved half circles with Gaussian noise, labels 0 and 1. */
function moons(n: number, rng: Rng, noise = 0.1): { x: Float32Array; y: number[] } {
  const x = new Float32Array(2 * n);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const outer = i % 2 === 0;
    const t = Math.PI * rng.uniform();
    x[2 * i] = (outer ? Math.cos(t) : 1 - Math.cos(t)) + noise * rng.normal();
    x[2 * i + 1] = (outer ? Math.sin(t) : 0.5 - Math.sin(t)) + noise * rng.normal();
    y.push(outer ? 0 : 1);
  }
  return { x, y };
}

/** Mean cross-entropy as logsumexp − the label's logit (the label picked by a one-hot mask). */
function crossEntropy(logits: Tensor, oneHot: Tensor): Tensor {
  return ops.mean(ops.sub(ops.logsumexp(logits, 1), ops.sum(ops.mul(logits, oneHot), 1)));
}

describe('modules', async () => {
  const e = await engine();

  it('dotted names, buffers, train/eval propagation, parameters()', () => {
    class Block extends nn.Module {
      constructor(rng: Rng) {
        super();
        this.registerModule('conv1', new nn.Linear(e, 3, 4, rng));
        this.registerBuffer('running_mean', e.zeros([4]));
      }
    }
    const rng = new Rng(1);
    const layer = new nn.Module();
    layer.registerModule('0', new Block(rng));
    layer.registerModule('1', new Block(rng));
    const root = new nn.Module();
    root.registerModule('layer1', layer);
    root.registerModule('head', new nn.Linear(e, 4, 2, rng, { bias: false }));
    const names = root.namedParameters().map(([n]) => n);
    expect(names).toEqual(['layer1.0.conv1.weight', 'layer1.0.conv1.bias', 'layer1.1.conv1.weight', 'layer1.1.conv1.bias', 'head.weight']);
    expect(root.namedParameters().map(([, t]) => t.name)).toEqual(names);
    expect(root.namedBuffers().map(([n]) => n)).toEqual(['layer1.0.running_mean', 'layer1.1.running_mean']);
    expect(Object.keys(root.stateDict())).toEqual([...names, 'layer1.0.running_mean', 'layer1.1.running_mean']);
    expect(root.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(root.namedBuffers().every(([, b]) => !b.requiresGrad)).toBe(true);
    root.eval();
    expect([...root.namedModules()].map(([, m]) => m.training)).toEqual(new Array(7).fill(false));
    layer.train();
    expect([...root.namedModules()].map(([n, m]) => [n, m.training])).toEqual([
      ['', false], ['layer1', true], ['layer1.0', true], ['layer1.0.conv1', true], ['layer1.1', true], ['layer1.1.conv1', true], ['head', false],
    ]);
    expect(() => layer.registerModule('0', new nn.Module())).toThrow(/'0' is already registered/);
    expect(() => layer.registerBuffer('a.b', e.zeros([1]))).toThrow(/invalid name 'a.b'/);
    for (const t of Object.values(root.stateDict())) t.dispose();
  });

  it('Linear: PyTorch initialisation U(±1/√in) drawn from the given Rng, weight then bias', async () => {
    const lin = new nn.Linear(e, 50, 40, new Rng(3));
    const draw = new Rng(3);
    const b = 1 / Math.sqrt(50);
    const expected = Float32Array.from({ length: 50 * 40 + 40 }, () => -b + 2 * b * draw.uniform());
    const got = new Float32Array([...(await lin.weight.toArray()), ...(await lin.bias!.toArray())]);
    expect(got).toEqual(expected);
    const w = await lin.weight.toArray();
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(b);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.99 * b);
    for (const t of lin.parameters()) t.dispose();
  });

  it('stateDict / loadStateDict copy values; mismatches are named', async () => {
    const a = new MLP(e, new Rng(1), 8);
    const b = new MLP(e, new Rng(2), 8);
    const x = e.tensor([0.3, -1.2, 0.5, 0.9, 2, -0.1], [3, 2]);
    const ya = await e.noGrad(() => a.forward(x)).toArray();
    expect(await e.noGrad(() => b.forward(x)).toArray()).not.toEqual(ya);
    expect(b.loadStateDict(a.stateDict())).toEqual({ missing: [], unexpected: [] });
    expect(await e.noGrad(() => b.forward(x)).toArray()).toEqual(ya);

    const c = new MLP(e, new Rng(4), 6);
    const dict = { ...a.stateDict(), extra: e.zeros([1]) };
    delete (dict as Record<string, Tensor>)['fc2.bias'];
    expect(() => c.loadStateDict(dict)).toThrow(
      /loadStateDict into MLP: mis-shaped: fc1\.weight: expected \[6, 2\], got \[8, 2\]; fc1\.bias: expected \[6\], got \[8\]; fc2\.weight: expected \[2, 6\], got \[2, 8\] \| missing: fc2\.bias \| unexpected: extra/,
    );
    const d = new MLP(e, new Rng(5), 8);
    expect(d.loadStateDict(dict, { strict: false })).toEqual({ missing: ['fc2.bias'], unexpected: ['extra'] });
    expect(await d.fc1.weight.toArray()).toEqual(await a.fc1.weight.toArray());
    for (const m of [a, b, c, d]) for (const p of m.parameters()) p.dispose();
  });
});

describe('training a tiny MLP', async () => {
  const e = await engine();
  const rng = new Rng(2024);
  const n = 128;
  const data = moons(n, rng);
  const x = e.keep(e.tensor(data.x, [n, 2]));
  const hot = e.keep(e.tensor(data.y.flatMap((c) => (c === 0 ? [1, 0] : [0, 1])), [n, 2]));
  const model = new MLP(e, rng);
  const opt = new optim.AdamW(
    [
      { params: [model.fc1.weight, model.fc2.weight] },
      { params: [model.fc1.bias!, model.fc2.bias!], weightDecay: 0 },
    ],
    { lr: 0.02, weightDecay: 1e-4 },
  );
  const lrs = optim.cosineSchedule(0.02, 0.002, 2, 100);

  /** One full-batch step: forward, backward, clipping, optimizer. Everything it creates dies with its scope. */
  let it_ = 0;
  const step = (): Tensor =>
    e.scope(() => {
      opt.setLr('all', lrs[Math.min(it_++, lrs.length - 1)]);
      model.zeroGrad();
      const loss = crossEntropy(model.forward(x), hot);
      loss.backward();
      optim.clipGradNorm(model.parameters(), 5);
      opt.step();
      return loss;
    });

  const accuracy = async (): Promise<number> => {
    const pred = await e.scope(() => ops.argmax(e.noGrad(() => model.forward(x)), 1)).toArray();
    return data.y.filter((c, i) => pred[i] === c).length / n;
  };

  it('fits two moons: the loss falls far below its start and accuracy is high', async () => {
    const first = step();
    const initial = await first.item();
    first.dispose();
    for (let i = 0; i < 99; i++) step().dispose();
    const last = step();
    const final = await last.item();
    last.dispose();
    expect(initial).toBeGreaterThan(0.4);
    expect(final).toBeLessThan(initial / 10);
    expect(await accuracy()).toBeGreaterThan(0.97);
  });

  it('a steady-state step creates no buffers, pipelines or bind groups, and submits once', async () => {
    const be = e.backend;
    // The free lists are stacks: after other work (the accuracy check) a few steps pass before each step
    // hands out its buffers in the same order as the last, and bind groups stop being created.
    for (let i = 0; i < 12; i++) step().dispose();
    await e.sync();
    const before = { ...be.memory(), ...be.counters };
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) step().dispose();
    await e.sync();
    const ms = (performance.now() - t0) / 100;
    const after = { ...be.memory(), ...be.counters };
    expect(after.created, 'pool buffers created').toBe(before.created);
    expect(after.inUse, 'pool buffers in use').toBe(before.inUse);
    expect(after.pipelinesCreated, 'pipelines').toBe(before.pipelinesCreated);
    expect(after.bindGroupsCreated, 'bind groups').toBe(before.bindGroupsCreated);
    expect(after.readbacks, 'readbacks').toBe(before.readbacks);

    // One step: every dispatch goes into one command buffer, submitted when the loss is read.
    const c0 = { ...be.counters };
    const loss = step();
    const c1 = { ...be.counters };
    expect(c1.readbacks - c0.readbacks).toBe(0);
    expect(c1.submits - c0.submits).toBeLessThanOrEqual(1);
    await loss.item();
    loss.dispose();
    const c2 = { ...be.counters };
    expect(c2.submits - c0.submits).toBeLessThanOrEqual(2);
    expect(c2.readbacks - c0.readbacks).toBe(1);
    console.log(`MLP step (lavapipe): ${(c1.dispatches - c0.dispatches)} dispatches, ${c2.submits - c0.submits} submit(s), ${ms.toFixed(2)} ms/step over 100 steps`);
  });

  it('bad input throws errors naming the op and the shapes', async () => {
    expect(() => model.forward(e.tensor(new Float32Array(12), [4, 3]))).toThrow(/linear: input \[4, 3\] does not match weight \[32, 2\]/);
    const dead = e.tensor(new Float32Array(8), [4, 2]);
    dead.dispose();
    expect(() => model.forward(dead)).toThrow(/linear: Tensor\(\[4, 2\]\) was disposed/);
    const other = await Engine.create();
    try {
      const foreign = other.tensor(new Float32Array(8), [4, 2]);
      expect(() => model.forward(foreign)).toThrow(/linear: Tensor\(\[32, 2\], fc1\.weight\) lives on another device than Tensor\(\[4, 2\]\)/);
      expect(() => ops.add(x, foreign)).toThrow(/add: Tensor\(\[4, 2\]\) lives on another device than Tensor\(\[128, 2\]\)/);
      expect(() => optim.emaUpdate([model.fc1.weight], [other.zeros([32, 2])], 0.9)).toThrow(/emaUpdate: .*\[32, 2\].* lives on another device/);
      expect(() => new optim.SGD([model.fc1.weight, other.parameter(other.zeros([3]))], { lr: 1 })).toThrow(/SGD: Tensor\(\[3\]\) lives on another device/);
    } finally {
      other.destroy();
    }
  });
});
