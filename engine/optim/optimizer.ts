// What SGD and AdamW share: parameter groups with their own hyperparameters, per-parameter state
// buffers living on the GPU, the step loop (one fused dispatch per parameter, no readback) and
// checkpoints of that state.

import type { Tensor } from '../engine.js';
import { fmt, sameShape } from '../shape.js';
import { copyInto } from '../ops/view.js';
import { checkInputs } from '../ops/map.js';

/** Hyperparameters every optimizer's parameter group has. */
export interface GroupHyper {
  lr: number;
  weightDecay: number;
}

/** A parameter group: its tensors and hyperparameters. */
export type ParamGroup<H extends GroupHyper> = H & { params: Tensor[] };
/** A group as given to a constructor: options it leaves out come from the optimizer's defaults. */
export type GroupSpec<H extends GroupHyper> = Partial<H> & { params: Tensor[] };

/** One parameter's optimizer state: step count and buffers (momentum, moments). */
export interface ParamState {
  /** Updates applied to this parameter (parameters without a gradient are skipped, as in PyTorch). */
  step: number;
  buffers: Record<string, Tensor>;
}

/** An optimizer's state as checkpoints save it: groups' hyperparameters and each parameter's buffers. */
export interface OptimizerStateDict<H extends GroupHyper = GroupHyper> {
  /** Hyperparameters and size of each group. */
  groups: (H & { size: number })[];
  /** One entry per parameter, in group order. The tensors are the optimizer's own (not copies). */
  state: ParamState[];
}

/** Base of the optimizers: parameter groups with their hyperparameters, per-parameter state, state dicts. */
export abstract class Optimizer<H extends GroupHyper> {
  readonly groups: ParamGroup<H>[];
  private readonly states: ParamState[][];

  constructor(
    readonly name: string,
    params: Tensor[] | GroupSpec<H>[],
    defaults: H,
  ) {
    const specs: GroupSpec<H>[] = isTensorList(params) ? [{ params } as GroupSpec<H>] : params;
    if (specs.length === 0 || specs.every((g) => g.params.length === 0)) throw new Error(`${name}: no parameters given`);
    this.groups = specs.map((g) => ({ ...defaults, ...g, params: [...g.params] }));
    this.checkParams();
    for (const g of this.groups) this.validate(g);
    this.states = this.groups.map((g) =>
      g.params.map((p) => {
        const buffers: Record<string, Tensor> = {};
        for (const b of this.stateNames(g)) buffers[b] = p.engine.keep(p.engine.zeros(p.shape));
        return { step: 0, buffers };
      }),
    );
  }

  /** Names of the state buffers each parameter of this group gets (zero-initialised). */
  protected abstract stateNames(group: H): string[];
  /** Throw on invalid hyperparameters. */
  protected abstract validate(group: H): void;
  /** Dispatch one fused update of `p` from `grad`; `st.step` is already incremented. */
  protected abstract update(p: Tensor, grad: Tensor, st: ParamState, group: H): void;

  private checkParams(): void {
    const seen = new Set<Tensor>();
    const engine = this.groups.find((g) => g.params.length)!.params[0].engine;
    for (const p of this.groups.flatMap((g) => g.params)) {
      p.assertAlive(this.name);
      if (p.engine !== engine) throw new Error(`${this.name}: ${p} lives on another device than the other parameters`);
      if (p.dtype !== 'f32' || !p.isContiguous()) throw new Error(`${this.name}: ${p} must be a contiguous f32 tensor`);
      if (seen.has(p)) throw new Error(`${this.name}: ${p} appears more than once in the parameter groups`);
      seen.add(p);
    }
  }

  /** Update every parameter that has a gradient: one dispatch each, queued without any readback. */
  step(): void {
    this.groups.forEach((g, gi) =>
      g.params.forEach((p, pi) => {
        const grad = p.grad;
        if (!grad) return;
        p.assertAlive(`${this.name}.step`);
        grad.assertAlive(`${this.name}.step`);
        if (!sameShape(grad.shape, p.shape) || !grad.isContiguous() || grad.buffer === p.buffer) {
          throw new Error(`${this.name}.step: gradient ${fmt(grad.shape)} of ${p} must be a contiguous tensor of its shape with its own storage`);
        }
        const st = this.states[gi][pi];
        st.step++;
        this.update(p, grad, st, g);
      }),
    );
  }

  /** Drop the gradients of every parameter. */
  zeroGrad(): void {
    for (const p of this.groups.flatMap((g) => g.params)) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Learning rate of one group, or of all groups. Costs nothing: it travels in the next step's uniforms. */
  setLr(group: number | 'all', lr: number): void {
    for (const g of this.select(group)) g.lr = lr;
  }

  /** Set the weight decay of one parameter group, or of all. */
  setWeightDecay(group: number | 'all', weightDecay: number): void {
    for (const g of this.select(group)) g.weightDecay = weightDecay;
  }

  private select(group: number | 'all'): ParamGroup<H>[] {
    if (group === 'all') return this.groups;
    const g = this.groups[group];
    if (!g) throw new Error(`${this.name}: no parameter group ${group} (there are ${this.groups.length})`);
    return [g];
  }

  /** Release every state buffer (momentum, moments): the optimizer is done with; stepping it afterwards throws. */
  dispose(): void {
    for (const st of this.states.flat()) for (const t of Object.values(st.buffers)) t.dispose();
  }

  // ---------------------------------------------------------------- checkpoints

  /** Hyperparameters of every group and every parameter's state, as checkpoints save them. */
  stateDict(): OptimizerStateDict<H> {
    return {
      groups: this.groups.map(({ params, ...hyper }) => ({ ...(hyper as unknown as H), size: params.length })),
      state: this.states.flat().map((s) => ({ step: s.step, buffers: { ...s.buffers } })),
    };
  }

  /** Restore hyperparameters, step counts and state buffers (copied in place, so no buffer is reallocated). */
  loadStateDict(dict: OptimizerStateDict<H>): void {
    const sizes = this.groups.map((g) => g.params.length);
    const theirs = dict.groups.map((g) => g.size);
    if (!sameShape(sizes, theirs)) {
      throw new Error(`${this.name}.loadStateDict: group sizes ${fmt(theirs)} do not match this optimizer's ${fmt(sizes)}`);
    }
    const mine = this.states.flat();
    if (dict.state.length !== mine.length) {
      throw new Error(`${this.name}.loadStateDict: ${dict.state.length} parameter states for ${mine.length} parameters`);
    }
    const params = this.groups.flatMap((g) => g.params);
    mine.forEach((st, i) => {
      const src = dict.state[i].buffers;
      const names = Object.keys(st.buffers);
      if (!sameNames(names, Object.keys(src))) {
        throw new Error(`${this.name}.loadStateDict: state of ${params[i]} has ${Object.keys(src).join(', ') || 'no buffers'}, expected ${names.join(', ') || 'none'}`);
      }
      for (const n of names) {
        checkInputs(`${this.name}.loadStateDict`, [st.buffers[n], src[n]]);
        if (!sameShape(src[n].shape, st.buffers[n].shape)) {
          throw new Error(`${this.name}.loadStateDict: ${n} of ${params[i]} is ${fmt(src[n].shape)}, expected ${fmt(st.buffers[n].shape)}`);
        }
      }
    });
    mine.forEach((st, i) => {
      st.step = dict.state[i].step;
      for (const [n, t] of Object.entries(st.buffers)) if (dict.state[i].buffers[n] !== t) copyInto(t, dict.state[i].buffers[n]);
    });
    this.groups.forEach((g, gi) => {
      const { size: _size, ...hyper } = dict.groups[gi];
      Object.assign(g, hyper);
    });
  }
}

function isTensorList(p: unknown[]): p is Tensor[] {
  return p.length === 0 || !('params' in (p[0] as object));
}

function sameNames(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((n) => b.includes(n));
}
