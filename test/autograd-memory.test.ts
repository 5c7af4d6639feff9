// Backward frees what it no longer needs: intermediate gradients once consumed, a rule's temporaries
// when it returns, node-owned saved tensors once the node has run. These tests check that the
// gradients are exactly those of a walk that frees nothing, that memory does not grow with depth,
// and that shared or passed-through gradient tensors survive as long as someone holds them.

import { describe, expect, it } from 'vitest';
import { ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { record } from '../engine/autograd.js';
import { engine } from './helpers.js';

/** The tape walk backward did before it freed anything: same order, same sums, nothing disposed. */
function keepAllBackward(e: Engine, root: Tensor): void {
  e.noGrad(() => {
    const order: Tensor[] = [];
    const seen = new Set<Tensor>([root]);
    const stack: [Tensor, number][] = [[root, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const inputs = top[0].node?.inputs ?? [];
      if (top[1] < inputs.length) {
        const child = inputs[top[1]++];
        if (child.requiresGrad && !seen.has(child)) {
          seen.add(child);
          stack.push([child, 0]);
        }
      } else {
        order.push(top[0]);
        stack.pop();
      }
    }
    const grads = new Map<Tensor, Tensor>([[root, e.ones(root.shape)]]);
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      if (!t.node) {
        t.grad = e.keep(t.grad ? ops.add(t.grad, g) : ops.clone(g));
        continue;
      }
      const node = t.node;
      const inGrads = node.backward(g);
      node.inputs.forEach((x, i) => {
        const gi = inGrads[i];
        if (!gi || !x.requiresGrad) return;
        const prev = grads.get(x);
        grads.set(x, prev ? ops.add(prev, gi) : gi);
      });
    }
  });
}

/** A graph with every pattern that shares gradient tensors: x + x, x * x, views, residuals, reuse. */
function net(x: Tensor, w: Tensor, b: Tensor): Tensor {
  const h = ops.relu(ops.add(ops.matmul(x, w), b));
  const twice = ops.add(h, h);
  const sq = ops.mul(twice, twice);
  const v = ops.reshape(ops.permute(sq, [1, 0]), [-1]);
  const r = ops.add(ops.softmax(ops.reshape(v, [sq.shape[1], sq.shape[0]]), -1), ops.transpose(h, 0, 1));
  const y = ops.add(ops.matmul(ops.transpose(r, 0, 1), ops.transpose(w, 0, 1)), x);
  return ops.sum(ops.mul(y, ops.layerNorm(y)));
}

describe('backward frees memory without changing gradients', () => {
  it('gradients equal bit for bit those of a walk that frees nothing', async () => {
    const e = await engine();
    const rng = new Rng(4);
    const x = e.randn([5, 7], rng);
    x.requiresGrad = true;
    const w = e.randn([7, 3], rng);
    w.requiresGrad = true;
    const b = e.randn([3], rng);
    b.requiresGrad = true;
    const leaves = [x, w, b];
    const [expected, actual] = await e.scopeAsync(async () => {
      const loss = net(x, w, b);
      keepAllBackward(e, loss);
      const ref = await Promise.all(leaves.map((t) => t.grad!.toArray()));
      for (const t of leaves) {
        t.grad!.dispose();
        t.grad = null;
      }
      loss.backward();
      return [ref, await Promise.all(leaves.map((t) => t.grad!.toArray()))];
    });
    leaves.forEach((t, i) => {
      expect(Array.from(actual[i]), `grad of leaf ${i}`).toEqual(Array.from(expected[i]));
      t.grad!.dispose();
      t.dispose();
    });
  });

  it('a rule returning one tensor for both inputs, or the incoming gradient itself, gives the right grads', async () => {
    const e = await engine();
    const a = e.tensor([1, -2, 3], [3], { requiresGrad: true });
    const b = e.tensor([4, 5, -6], [3], { requiresGrad: true });
    const got = await e.scopeAsync(async () => {
      const s = ops.add(a, b); // backward returns one tensor for a and b
      const c = ops.clone(s); // backward returns the incoming gradient
      const d = ops.add(c, c); // one tensor for the same input twice
      const loss = ops.sum(ops.mul(ops.add(d, s), a));
      loss.backward();
      return [await a.grad!.toArray(), await b.grad!.toArray()];
    });
    // loss = sum((3(a + b)) * a): dL/da = 3(a + b) + 3a, dL/db = 3a.
    expect(Array.from(got[0])).toEqual([3 * 5 + 3, 3 * 3 - 6, 3 * -3 + 9]);
    expect(Array.from(got[1])).toEqual([3, -6, 9]);
    for (const t of [a, b]) {
      t.grad!.dispose();
      t.dispose();
    }
  });

  it('the memory backward needs beyond the activations does not grow with depth', async () => {
    const e = await engine();
    const rng = new Rng(5);
    const n = 4096;
    const extra = async (depth: number): Promise<number> => {
      const x = e.randn([n], rng);
      x.requiresGrad = true;
      const ws = Array.from({ length: depth }, () => e.randn([n], rng));
      const bytes = await e.scopeAsync(async () => {
        let h = x;
        for (const w of ws) h = ops.relu(ops.add(ops.mul(h, w), h));
        const loss = ops.sum(h);
        await e.sync();
        const pool = e.backend.pool;
        pool.resetPeak();
        const before = pool.snapshot().bytesInUse;
        loss.backward();
        await e.sync();
        return pool.snapshot().peakBytesInUse - before;
      });
      x.grad!.dispose();
      x.dispose();
      ws.forEach((w) => w.dispose());
      return bytes;
    };
    const shallow = await extra(4);
    const deep = await extra(32);
    // A few [n] gradients at a time, whatever the depth (a walk that frees nothing needs ~3 per layer).
    expect(deep).toBe(shallow);
    expect(deep).toBeLessThanOrEqual(8 * n * 4);
  });

  it('saved tensors the node owns are disposed after its backward, or at once with no tape', async () => {
    const e = await engine();
    const x = e.tensor([1, 2, 3], [3], { requiresGrad: true });
    const scaled = (input: Tensor): { y: Tensor; s: Tensor } => {
      const s = e.tensor([2, 3, 4], [3]);
      const y = record(ops.mul(input.detach(), s), 'scaled', [input], (g) => [ops.mul(g, s)], [s]);
      return { y, s };
    };
    await e.scopeAsync(async () => {
      const { y, s } = scaled(x);
      expect(s.disposed).toBe(false);
      ops.sum(y).backward();
      expect(s.disposed).toBe(true);
      expect(Array.from(await x.grad!.toArray())).toEqual([2, 3, 4]);
      const off = e.noGrad(() => scaled(x));
      expect(off.s.disposed).toBe(true);
    });
    x.grad!.dispose();
    x.dispose();
  });

  it('a second backward through a freed graph throws; with retainGraph it accumulates', async () => {
    const e = await engine();
    const x = e.tensor([1, 2, 3], [3], { requiresGrad: true });
    await e.scopeAsync(async () => {
      const loss = ops.sum(ops.mul(x, x));
      loss.backward(undefined, { retainGraph: true });
      loss.backward();
      expect(Array.from(await x.grad!.toArray())).toEqual([4, 8, 12]);
      expect(() => loss.backward()).toThrow(/backward of reshape: the graph was freed by an earlier backward; pass \{ retainGraph: true \}/);
    });
    x.grad!.dispose();
    x.dispose();
  });
});
