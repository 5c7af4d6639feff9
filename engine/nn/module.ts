// PyTorch-like modules: a tree of named parameters, buffers and child modules. Nothing more: forward
// is an ordinary method of each subclass, and the tape does the rest. Names are dotted paths
// (`layer1.0.conv1.weight`) so checkpoints and parameter groups can be built from them.

import type { Tensor } from '../engine.js';
import { fmt, sameShape } from '../shape.js';
import { clone, copyInto } from '../ops/view.js';
import { checkInputs } from '../ops/map.js';

/** Names a state-dict load did not find in the file (missing) or in the module (unexpected). */
export interface LoadResult {
  missing: string[];
  unexpected: string[];
}

/** Base of layers and networks: named parameters, buffers and children, training mode, state dicts as in PyTorch. */
export class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children_ = new Map<string, Module>();

  /**
   * Register a parameter under `name`: it leaves every scope, requires grad, and carries its name (the
   * full dotted path once the module is registered in its parents).
   */
  registerParameter(name: string, t: Tensor): Tensor {
    this.checkName('registerParameter', name);
    t.node = null; // a parameter is a leaf even when computed (e.g. a scaled init)
    t.engine.parameter(t, name);
    this.params.set(name, t);
    return t;
  }

  /** Register state that is saved and loaded but not trained (running statistics). */
  registerBuffer(name: string, t: Tensor): Tensor {
    this.checkName('registerBuffer', name);
    t.engine.keep(t);
    t.name = name;
    this.buffers.set(name, t);
    return t;
  }

  /** Add child module `m` under `name` (its tensors are named `name.*`); returns m. */
  registerModule<M extends Module>(name: string, m: M): M {
    this.checkName('registerModule', name);
    this.children_.set(name, m);
    // Modules are built bottom-up, so prefixing here gives every tensor its full path in the end.
    for (const [n, t] of m.namedParameters()) t.name = `${name}.${n}`;
    for (const [n, t] of m.namedBuffers()) t.name = `${name}.${n}`;
    return m;
  }

  private checkName(op: string, name: string): void {
    if (!name || name.includes('.')) throw new Error(`${op}: invalid name '${name}' (non-empty, no dots)`);
    if (this.params.has(name) || this.buffers.has(name) || this.children_.has(name)) {
      throw new Error(`${op}: '${name}' is already registered in ${this.constructor.name}`);
    }
  }

  // ---------------------------------------------------------------- traversal

  /** This module and every descendant with its dotted name, depth first. */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this.children_) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  /** The direct child modules. */
  children(): Module[] {
    return [...this.children_.values()];
  }

  /** Every parameter with its dotted name, each tensor once (PyTorch's order: own, then children's). */
  namedParameters(): [string, Tensor][] {
    return this.collect((m) => m.params);
  }

  /** Every buffer (running statistics, ...) of this module and its descendants, with dotted names. */
  namedBuffers(): [string, Tensor][] {
    return this.collect((m) => m.buffers);
  }

  /** Every parameter of this module and its descendants. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  private collect(pick: (m: Module) => Map<string, Tensor>): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules()) {
      for (const [n, t] of pick(m)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([path ? `${path}.${n}` : n, t]);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- modes and gradients

  /** Set training mode on this module and every descendant (dropout, batch-norm statistics). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Evaluation mode for this module and its descendants (batch norm uses running statistics); returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Drop every parameter's gradient (PyTorch's set_to_none): its buffer returns to the pool. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Release every parameter (with its gradient) and buffer of this module and its descendants: their
   * GPU memory returns to the engine's pool. For a model that is done with on an engine that lives on
   * (a library user's, a test's); using the module afterwards throws.
   */
  dispose(): void {
    this.zeroGrad();
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }

  // ---------------------------------------------------------------- checkpoints

  /** Parameters and buffers by dotted name. The tensors are the module's own (not copies). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [n, t] of [...this.namedParameters(), ...this.namedBuffers()]) out[n] = t;
    return out;
  }

  /**
   * Copy values into the module's tensors in place. Shape or dtype mismatches always throw; missing
   * and unexpected names throw when `strict` (the default) and are returned otherwise.
   */
  loadStateDict(dict: Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const names = Object.keys(own);
    const given = names.filter((n) => Object.hasOwn(dict, n));
    const missing = names.filter((n) => !Object.hasOwn(dict, n));
    const unexpected = Object.keys(dict).filter((n) => !Object.hasOwn(own, n));
    for (const n of given) checkInputs('loadStateDict', [own[n], dict[n]]);
    const misShaped = given
      .filter((n) => !sameShape(own[n].shape, dict[n].shape) || own[n].dtype !== dict[n].dtype)
      .map((n) => `${n}: expected ${describe(own[n])}, got ${describe(dict[n])}`);
    const problems: string[] = [];
    if (misShaped.length) problems.push(`mis-shaped: ${misShaped.join('; ')}`);
    if (strict && missing.length) problems.push(`missing: ${missing.join(', ')}`);
    if (strict && unexpected.length) problems.push(`unexpected: ${unexpected.join(', ')}`);
    if (problems.length) throw new Error(`loadStateDict into ${this.constructor.name}: ${problems.join(' | ')}`);
    for (const n of given) {
      const src = dict[n];
      if (src === own[n]) continue;
      // A buffer cannot be bound as both input and output: a source aliasing its target goes through a copy.
      const copy = src.buffer === own[n].buffer ? clone(src) : src;
      copyInto(own[n], copy);
      if (copy !== src) copy.dispose();
    }
    return { missing, unexpected };
  }
}

function describe(t: Tensor): string {
  return `${fmt(t.shape)}${t.dtype === 'f32' ? '' : ` ${t.dtype}`}`;
}
