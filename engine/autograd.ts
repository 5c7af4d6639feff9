// Define-by-run autograd. Each op calls record() with a closure that maps the output's gradient to its
// inputs' gradients (micrograd's _backward, one per op file). backward() walks the tape in reverse
// topological order; leaves accumulate into .grad across calls until zeroGrad.

import type { Engine } from './engine.js';
import type { Tensor } from './tensor.js';
import { fmt, sameShape } from './shape.js';
import { add } from './ops/elementwise.js';
import { clone } from './ops/view.js';

/**
 * Attach a tape node to `out` when grad mode is on and some input needs a gradient. In no-grad mode
 * nothing is recorded, so the closure (and the activations it captures) is never kept.
 */
export function record(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  backward: (grad: Tensor) => (Tensor | null)[],
): Tensor {
  if (out.engine.gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep networks (ViT-B, 50-layer ResNets) would overflow a recursive walk's stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

export function runBackward(engine: Engine, root: Tensor, grad?: Tensor): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no input of it does)`);
  if (!grad && root.size !== 1) {
    throw new Error(`backward: ${root} is not a scalar; pass the output gradient explicitly`);
  }
  if (grad && !sameShape(grad.shape, root.shape)) {
    throw new Error(`backward: gradient shape ${fmt(grad.shape)} does not match output shape ${fmt(root.shape)}`);
  }
  engine.noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    const claimed = new Set<Tensor>();
    if (grad) claimed.add(grad);
    grads.set(root, grad ?? engine.ones(root.shape));
    const order = topoOrder(root);
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        accumulateLeaf(engine, t, g, claimed);
        continue;
      }
      const node = t.node;
      const inGrads = node.backward(g);
      node.inputs.forEach((x, i) => {
        const gi = inGrads[i];
        if (!gi || !x.requiresGrad) return;
        if (!sameShape(gi.shape, x.shape)) {
          throw new Error(`backward of ${node.op}: gradient ${fmt(gi.shape)} for input ${i} of shape ${fmt(x.shape)}`);
        }
        const prev = grads.get(x);
        grads.set(x, prev ? add(prev, gi) : gi);
      });
    }
  });
}

function accumulateLeaf(engine: Engine, leaf: Tensor, g: Tensor, claimed: Set<Tensor>): void {
  if (leaf.grad) {
    const sum = add(leaf.grad, g);
    leaf.grad.dispose();
    leaf.grad = engine.keep(sum);
    return;
  }
  // The leaf owns its gradient from now on, so it must not share storage with a view, with the
  // caller's seed gradient or with another leaf's gradient (ops like add return one tensor for both
  // inputs); optimizers also read it as a flat array.
  const owned = g.offset === 0 && g.isContiguous() && g.storage.refs === 1 && !claimed.has(g);
  const own = owned ? g : clone(g);
  claimed.add(own);
  leaf.grad = engine.keep(own);
}
