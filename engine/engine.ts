// The user-facing handle: one Engine per WebGPU device. It creates tensors, owns the grad mode and the
// lifetime scopes, and runs the tape backward. Nothing here is global: two engines can coexist.

import { Runtime } from './runtime.js';
import type { DeviceOptions } from './device.js';
import { Storage, Tensor, type DType } from './tensor.js';
import { checkShape, fmt, numel, type Shape } from './shape.js';
import { Rng } from './rng.js';
import { runBackward, type BackwardOptions } from './autograd.js';
import { fill } from './ops/elementwise.js';

export class Engine {
  gradEnabled = true;
  private scopes: Set<Tensor>[] = [];

  constructor(readonly backend: Runtime) {}

  static async create(opts: DeviceOptions = {}): Promise<Engine> {
    return new Engine(await Runtime.create(opts));
  }

  get description(): string {
    return this.backend.description;
  }

  // ---------------------------------------------------------------- creation

  /** A new uninitialised tensor (its contents are whatever the pooled buffer held). */
  empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape('empty', shape);
    const bytes = numel(shape) * 4;
    const buf = this.backend.pool.acquire(bytes);
    return new Tensor(this, new Storage(buf, bytes), shape, undefined, 0, dtype);
  }

  tensor(data: ArrayLike<number>, shape?: Shape, opts: { dtype?: DType; requiresGrad?: boolean } = {}): Tensor {
    const s = shape ?? [data.length];
    if (numel(s) !== data.length) {
      throw new Error(`tensor: ${data.length} values do not fill shape ${fmt(s)} (${numel(s)} elements)`);
    }
    const dtype = opts.dtype ?? 'f32';
    const t = this.empty(s, dtype);
    const arr = dtype === 'i32' ? Int32Array.from(data) : Float32Array.from(data);
    if (arr.length) this.backend.write(t.buffer, 0, arr);
    t.requiresGrad = !!opts.requiresGrad;
    return t;
  }

  full(shape: Shape, value: number): Tensor {
    return fill(this, shape, value);
  }
  zeros(shape: Shape): Tensor {
    return fill(this, shape, 0);
  }
  ones(shape: Shape): Tensor {
    return fill(this, shape, 1);
  }

  /** Normal(0, std) drawn on the CPU from a seeded generator. */
  randn(shape: Shape, rng: Rng, std = 1): Tensor {
    const a = new Float32Array(numel(shape));
    for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
    return this.tensor(a, shape);
  }
  /** Uniform[lo, hi) drawn on the CPU from a seeded generator. */
  rand(shape: Shape, rng: Rng, lo = 0, hi = 1): Tensor {
    const a = new Float32Array(numel(shape));
    for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rng.uniform();
    return this.tensor(a, shape);
  }

  /** A parameter: a tensor outside every scope, requiring gradients. */
  parameter(t: Tensor, name?: string): Tensor {
    this.keep(t);
    t.requiresGrad = true;
    if (name) t.name = name;
    return t;
  }

  // ---------------------------------------------------------------- lifetimes

  /**
   * Run fn and dispose every tensor it created except those it returns (which move to the enclosing
   * scope) and those kept with keep(). A training step inside a scope frees all its activations and
   * gradients of non-leaves at the end, so the next step reuses the same pooled buffers.
   */
  scope<T>(fn: () => T): T {
    const created = new Set<Tensor>();
    this.scopes.push(created);
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.scopes.pop();
      for (const t of created) t.dispose();
      throw e;
    }
    if (result instanceof Promise) {
      this.scopes.pop();
      throw new Error('scope: the function returned a Promise; use scopeAsync for async work');
    }
    this.endScope(created, result);
    return result;
  }

  /** Like scope(), for async functions. Do not interleave two async scopes on one engine. */
  async scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
    const created = new Set<Tensor>();
    this.scopes.push(created);
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      this.scopes.splice(this.scopes.lastIndexOf(created), 1);
      for (const t of created) t.dispose();
      throw e;
    }
    this.endScope(created, result);
    return result;
  }

  private endScope(created: Set<Tensor>, result: unknown): void {
    this.scopes.splice(this.scopes.lastIndexOf(created), 1);
    const kept = new Set<Tensor>();
    collectTensors(result, kept);
    const parent = this.scopes[this.scopes.length - 1];
    for (const t of created) {
      if (kept.has(t)) parent?.add(t);
      else t.dispose();
    }
  }

  /** Exempt a tensor from every enclosing scope: the caller now owns it. */
  keep<T extends Tensor>(t: T): T {
    for (const s of this.scopes) s.delete(t);
    return t;
  }

  /** Called by the Tensor constructor. */
  track(t: Tensor): void {
    this.scopes[this.scopes.length - 1]?.add(t);
  }
  untrack(t: Tensor): void {
    for (let i = this.scopes.length - 1; i >= 0; i--) if (this.scopes[i].delete(t)) return;
  }

  // ---------------------------------------------------------------- autograd

  noGrad<T>(fn: () => T): T {
    const prev = this.gradEnabled;
    this.gradEnabled = false;
    try {
      return fn();
    } finally {
      this.gradEnabled = prev;
    }
  }

  backward(root: Tensor, grad?: Tensor, opts?: BackwardOptions): void {
    runBackward(this, root, grad, opts);
  }

  // ---------------------------------------------------------------- device

  /** Wait for all queued GPU work; throws any WebGPU error it raised. */
  sync(): Promise<void> {
    return this.backend.sync();
  }

  destroy(): void {
    this.backend.destroy();
  }
}

function collectTensors(x: unknown, out: Set<Tensor>): void {
  if (x instanceof Tensor) out.add(x);
  else if (Array.isArray(x)) for (const v of x) collectTensors(v, out);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) collectTensors(v, out);
  }
}
