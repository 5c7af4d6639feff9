// The backward walk of the tape that record() (autograd.ts) builds: nodes in reverse topological order;
// leaves accumulate into .grad across calls until zeroGrad.
//
// Memory: an intermediate gradient is disposed as soon as the last node that reads it has run its
// backward, and a node's own saved tensors (record's `saved`) once its backward has run, so a deep
// network's backward holds the forward activations plus a few layers' gradients, not every gradient
// of the step. A second backward through the same graph needs `retainGraph` on the first.

import { tensorIdWatermark, type BackwardOptions, type Engine, type GradNode, type Tensor } from './engine.js';
import { fmt, sameShape } from './shape.js';
import { add } from './ops/elementwise.js';
import { clone } from './ops/view.js';

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep networks (ViT-B, 50-layer ResNets) would overflow a recursive walk's stack.
  // The stack as two arrays (tensor, next input to visit) rather than a pair allocated per node.
  const stack: Tensor[] = [root];
  const next: number[] = [0];
  seen.add(root);
  while (stack.length) {
    const top = stack.length - 1;
    const t = stack[top];
    const i = next[top];
    const inputs = t.node?.inputs;
    if (inputs && i < inputs.length) {
      next[top] = i + 1;
      const child = inputs[i];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push(child);
        next.push(0);
      }
    } else {
      order.push(t);
      stack.pop();
      next.pop();
    }
  }
  return order;
}

/**
 * Which gradient tensors backward may dispose: those it created itself (ids from `firstId` on), once
 * no entry of the pending-gradient map holds them and no leaf has taken them as its .grad. A rule
 * may return one tensor for two inputs (add) or the incoming gradient itself (clone), so a tensor
 * is counted once per map entry that holds it, and counts only fall after a node's results are in.
 */
class GradLedger {
  private holds = new Map<Tensor, number>();
  /** Leaves' own gradients and the caller's seed: never disposed here. */
  readonly claimed = new Set<Tensor>();

  constructor(private readonly firstId: number) {}

  hold(g: Tensor): void {
    this.holds.set(g, (this.holds.get(g) ?? 0) + 1);
  }

  /** One map entry stopped holding g. A count falls to 0 rather than being deleted: a map that shrinks rehashes. */
  unhold(g: Tensor): void {
    this.holds.set(g, (this.holds.get(g) ?? 0) - 1);
  }

  /** Dispose g if backward made it and nothing holds or owns it. */
  release(g: Tensor): void {
    if (g.id >= this.firstId && !((this.holds.get(g) ?? 0) > 0) && !this.claimed.has(g)) g.dispose();
  }
}

const FREED = (op: string) =>
  `backward of ${op}: the graph was freed by an earlier backward; pass { retainGraph: true } to the first one to run backward twice`;

/** Stands in for a released node's rule (runBackward checks `released` before calling it). */
function releasedRule(): never {
  throw new Error(FREED('a released node'));
}

function releaseNode(node: GradNode): void {
  if (node.saved) for (const t of node.saved) t.dispose();
  node.saved = undefined;
  node.released = true;
  // The closure captures activations and views: let the garbage collector have it.
  node.backward = releasedRule;
}

const NO_TENSOR = undefined as unknown as Tensor;

export function runBackward(engine: Engine, root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no input of it does)`);
  if (!grad && root.size !== 1) {
    throw new Error(`backward: ${root} is not a scalar; pass the output gradient explicitly`);
  }
  if (grad && !sameShape(grad.shape, root.shape)) {
    throw new Error(`backward: gradient shape ${fmt(grad.shape)} does not match output shape ${fmt(root.shape)}`);
  }
  engine.noGrad(() => {
    const ledger = new GradLedger(tensorIdWatermark());
    const grads = new Map<Tensor, Tensor>();
    if (grad) ledger.claimed.add(grad);
    const seed = grad ?? engine.ones(root.shape);
    grads.set(root, seed);
    ledger.hold(seed);
    const order = topoOrder(root);
    // This walk's list of replaced gradients, reused by every node (written in place: an array emptied
    // with length = 0 gives up its storage and would allocate again at the next push). Local to the
    // walk, so walks on two engines never share it.
    const replaced: Tensor[] = [];
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      // t's entry stays: every node that reads t came before it in this order, so none looks it up
      // again, and deleting entries would make the map rehash as it shrinks.
      grads.set(t, NO_TENSOR);
      if (!t.node) {
        accumulateLeaf(engine, t, g, ledger);
        ledger.unhold(g);
        ledger.release(g);
        engine.onLeafGradient?.(t);
        continue;
      }
      const node = t.node;
      if (node.released) throw new Error(FREED(node.op));
      // A rule's temporaries (contiguous copies, partial products) are freed as soon as it returns.
      const inGrads = engine.scope(() => node.backward(g));
      // g, then every pending gradient that a sum below replaced.
      let nReplaced = 0;
      replaced[nReplaced++] = g;
      const inputs = node.inputs;
      for (let i = 0; i < inputs.length; i++) {
        const x = inputs[i];
        const gi = inGrads[i];
        if (!gi || !x.requiresGrad) continue;
        if (!sameShape(gi.shape, x.shape)) {
          throw new Error(`backward of ${node.op}: gradient ${fmt(gi.shape)} for input ${i} of shape ${fmt(x.shape)}`);
        }
        const prev = grads.get(x);
        const next = prev ? add(prev, gi) : gi;
        if (prev) replaced[nReplaced++] = prev;
        grads.set(x, next);
        ledger.hold(next);
      }
      for (let i = 0; i < nReplaced; i++) ledger.unhold(replaced[i]);
      for (let i = 0; i < nReplaced; i++) ledger.release(replaced[i]);
      // Let the garbage collector have the gradients once they are disposed.
      for (let i = 0; i < nReplaced; i++) replaced[i] = NO_TENSOR;
      // Gradients that went into a sum, or to inputs that need none, are held by no entry.
      for (const gi of inGrads) if (gi) ledger.release(gi);
      if (!opts.retainGraph) releaseNode(node);
    }
  });
}

function accumulateLeaf(engine: Engine, leaf: Tensor, g: Tensor, ledger: GradLedger): void {
  if (leaf.grad) {
    const sum = add(leaf.grad, g);
    leaf.grad.dispose();
    leaf.grad = engine.keep(sum);
    return;
  }
  // The leaf owns its gradient from now on, so it must not share storage with a view, with the
  // caller's seed gradient or with another leaf's gradient (ops like add return one tensor for both
  // inputs); optimizers also read it as a flat array.
  const owned = g.offset === 0 && g.isContiguous() && g.storage.refs === 1 && !ledger.claimed.has(g);
  const own = owned ? g : clone(g);
  ledger.claimed.add(own);
  leaf.grad = engine.keep(own);
}
