// The user-facing handle: one Engine per WebGPU device. It creates tensors, owns the grad mode and the
// lifetime scopes, and runs the tape backward. Nothing here is global: two engines can coexist.
// Tensors live here too: an engine makes tensors and a tensor knows its engine, so the two types
// cannot sit in modules that import each other without an import cycle.

import { Runtime } from './runtime.js';
import type { DeviceOptions } from './device.js';
import { checkShape, contiguousStrides, copyDims, fmt, numel, type Shape } from './shape.js';
import { Rng } from './rng.js';

/** One WebGPU device: creates tensors, owns grad mode and lifetime scopes, runs backward. Create with Engine.create(). */
export class Engine {
  gradEnabled = true;
  /**
   * Called by backward each time a leaf's gradient of that backward is complete (its .grad then holds
   * this backward's whole contribution), while the walk goes on: a data-parallel run starts reading a
   * gradient bucket back there, so the copy runs on the GPU while the rest of the backward is encoded.
   */
  onLeafGradient: ((leaf: Tensor) => void) | null = null;
  private scopes: Set<Tensor>[] = [];
  /** Emptied sets of finished scopes, for the next ones. */
  private freeScopes: Set<Tensor>[] = [];
  /** Counts finished scopes: endScope marks the tensors a scope returns with the count (Tensor.keptBy). */
  private scopeEnds = 0;

  constructor(readonly backend: Runtime) {}

  /** An engine on a new WebGPU device (Dawn in Node, navigator.gpu in a browser). */
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

  /** A new tensor holding `data` (row-major) in `shape` (default: one dimension). */
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

  /** A new tensor of `shape` filled with `value`. */
  full(shape: Shape, value: number): Tensor {
    return core.fill(this, shape, value);
  }
  /** A new tensor of `shape` filled with 0. */
  zeros(shape: Shape): Tensor {
    return core.fill(this, shape, 0);
  }
  /** A new tensor of `shape` filled with 1. */
  ones(shape: Shape): Tensor {
    return core.fill(this, shape, 1);
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
    // A finished scope's set is emptied and reused (backward opens one per tape node).
    const created = this.freeScopes.pop() ?? new Set<Tensor>();
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
    const at = this.scopes.lastIndexOf(created);
    if (at === this.scopes.length - 1) this.scopes.pop();
    else this.scopes.splice(at, 1);
    // Marks rather than a set of the returned tensors: a backward ends a scope per tape node, and a
    // set emptied for each would allocate a fresh table every time.
    const mark = ++this.scopeEnds;
    markTensors(result, mark);
    const parent = this.scopes[this.scopes.length - 1];
    for (const t of created) {
      if (t.keptBy === mark) parent?.add(t);
      else t.dispose();
    }
    if (created.size) created.clear();
    this.freeScopes.push(created);
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
  /** Remove a tensor from the innermost scope holding it, so that scope's end does not dispose it. */
  untrack(t: Tensor): void {
    for (let i = this.scopes.length - 1; i >= 0; i--) if (this.scopes[i].delete(t)) return;
  }

  // ---------------------------------------------------------------- autograd

  /** Run `fn` without recording operations for autograd. */
  noGrad<T>(fn: () => T): T {
    const prev = this.gradEnabled;
    this.gradEnabled = false;
    try {
      return fn();
    } finally {
      this.gradEnabled = prev;
    }
  }

  /** Backpropagate from `root` (a scalar unless `grad` is given), accumulating `.grad` of every tensor that requires it. */
  backward(root: Tensor, grad?: Tensor, opts?: BackwardOptions): void {
    core.backward(this, root, grad, opts);
  }

  // ---------------------------------------------------------------- device

  /** Wait for all queued GPU work; throws any WebGPU error it raised. */
  sync(): Promise<void> {
    return this.backend.sync();
  }

  /**
   * Copy several tensors to the CPU in one readback (one wait for the GPU rather than one per
   * tensor); the arrays come back in the order given.
   */
  async readAll(tensors: readonly Tensor[]): Promise<(Float32Array | Int32Array)[]> {
    const flat = tensors.map((t) => {
      t.assertAlive('readAll');
      return t.isContiguous() ? t : core.contiguous(t);
    });
    try {
      const bytes = await this.backend.readRegions(flat.map((t) => ({ buffer: t.buffer, byteOffset: t.offset * 4, byteLength: t.size * 4 })));
      return bytes.map((b, i) => (tensors[i].dtype === 'i32' ? new Int32Array(b) : new Float32Array(b)));
    } finally {
      flat.forEach((t, i) => t !== tensors[i] && t.dispose());
    }
  }

  /** Release the device and its buffers; the engine and its tensors cannot be used afterwards. */
  destroy(): void {
    this.backend.destroy();
  }
}

/** Set keptBy of every tensor in x (a tensor, or arrays and plain objects holding tensors). */
function markTensors(x: unknown, mark: number): void {
  if (x instanceof Tensor) x.keptBy = mark;
  else if (Array.isArray(x)) for (let i = 0; i < x.length; i++) markTensors(x[i], mark);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) markTensors(v, mark);
  }
}

// ---------------------------------------------------------------- the ops the core calls

/** Options of Engine.backward. */
export interface BackwardOptions {
  /** Keep every node's saved tensors, so that backward can run through this graph again. */
  retainGraph?: boolean;
}

/**
 * What tensors and engines call but the ops and the autograd implement: views, fill, the backward
 * walk. Those modules build on this one, so they hand their functions over when they load
 * (ops/index.ts calls provideCoreOps), rather than this module importing them back.
 */
export interface CoreOps {
  alias(x: Tensor, shape: Shape, strides: Shape, offset: number): Tensor;
  contiguous(x: Tensor): Tensor;
  reshape(x: Tensor, shape: number[]): Tensor;
  permute(x: Tensor, dims: number[]): Tensor;
  transpose(x: Tensor, a: number, b: number): Tensor;
  slice(x: Tensor, axis: number, start: number, end: number, step?: number): Tensor;
  expand(x: Tensor, shape: number[]): Tensor;
  unsqueeze(x: Tensor, axis: number): Tensor;
  squeeze(x: Tensor, axis?: number): Tensor;
  flatten(x: Tensor, start?: number, end?: number): Tensor;
  fill(engine: Engine, shape: Shape, value: number): Tensor;
  backward(engine: Engine, root: Tensor, grad?: Tensor, opts?: BackwardOptions): void;
}

const notLoaded = (): never => {
  throw new Error("the engine's ops are not loaded: import the engine through its entry point (engine/index.ts)");
};
let core: CoreOps = {
  alias: notLoaded, contiguous: notLoaded, reshape: notLoaded, permute: notLoaded, transpose: notLoaded, slice: notLoaded,
  expand: notLoaded, unsqueeze: notLoaded, squeeze: notLoaded, flatten: notLoaded, fill: notLoaded, backward: notLoaded,
};

/** Called once by ops/index.ts when it loads. */
export function provideCoreOps(ops: CoreOps): void {
  core = ops;
}

// ---------------------------------------------------------------- tensors
// A shape, strides and an element offset into refcounted GPU storage. Views (reshape, permute, slice,
// expand) share storage; every op's output is a fresh contiguous tensor.

/** Element type of a tensor: 32-bit float or 32-bit signed integer. */
export type DType = 'f32' | 'i32';

/** GPU memory shared by a tensor and its views; returned to the pool when the last one is disposed. */
export class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) {}
}

/** A node of the autograd tape: how to push the output's gradient back to the inputs. */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  backward: (grad: Tensor) => (Tensor | null)[];
  /** Tensors the op made only for its backward; disposed once that has run. */
  saved?: Tensor[];
  /** Set once backward has run through this node without retainGraph. */
  released?: boolean;
}

let nextTensorId = 0;

/** The id the next tensor will get: every tensor made from now on has an id at least this. */
export function tensorIdWatermark(): number {
  return nextTensorId;
}

/** An n-dimensional f32 or i32 array on the GPU: a view (shape, strides, offset) of a storage buffer, with its autograd node. */
export class Tensor {
  readonly id = nextTensorId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  /** Parameter or buffer name, for error messages and checkpoints. */
  name?: string;
  /** The last scope end that found this tensor among the scope's results (Engine.endScope). */
  keptBy = 0;
  private disposedFlag = false;

  constructor(
    readonly engine: Engine,
    readonly storage: Storage,
    shape: Shape,
    strides?: Shape,
    readonly offset = 0,
    readonly dtype: DType = 'f32',
  ) {
    this.shape = copyDims(shape);
    this.strides = strides ? copyDims(strides) : contiguousStrides(shape);
    this.size = numel(shape);
    engine.track(this);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  get buffer(): GPUBuffer {
    return this.storage.buffer;
  }

  /** Row-major with no gaps (offset allowed). */
  isContiguous(): boolean {
    let expected = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== expected) return false;
      expected *= this.shape[i];
    }
    return true;
  }

  /** Shape, dtype and name, for messages. */
  toString(): string {
    return `Tensor(${fmt(this.shape)}${this.dtype === 'f32' ? '' : `, ${this.dtype}`}${this.name ? `, ${this.name}` : ''})`;
  }

  /** Throw if this tensor can no longer be used by `op`. */
  assertAlive(op: string): void {
    if (this.disposedFlag) throw new Error(`${op}: ${this} was disposed and cannot be used`);
  }

  /** Release this tensor's buffer (once every view of it is disposed); using it afterwards throws. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.node = null;
    if (--this.storage.refs === 0) this.engine.backend.pool.release(this.storage.buffer);
    this.engine.untrack(this);
  }

  /** Copy to the CPU (waits for every queued kernel). */
  async toArray(): Promise<Float32Array | Int32Array> {
    this.assertAlive('toArray');
    const t = this.isContiguous() ? this : core.contiguous(this);
    const bytes = await this.engine.backend.read(t.buffer, t.offset * 4, t.size * 4);
    if (t !== this) t.dispose();
    return this.dtype === 'i32' ? new Int32Array(bytes) : new Float32Array(bytes);
  }

  /** The value of a one-element tensor, read back from the GPU. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: ${this} has ${this.size} elements, not 1`);
    return (await this.toArray())[0];
  }

  /** Run the tape backward from this tensor (a scalar unless a gradient is given). */
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    this.engine.backward(this, grad, opts);
  }

  // ---------------------------------------------------------------- views (ops/view.ts)

  /** See ops.reshape. */
  reshape(...shape: number[] | [number[]]): Tensor {
    return core.reshape(this, flatArgs(shape));
  }
  /** See ops.permute. */
  permute(...dims: number[] | [number[]]): Tensor {
    return core.permute(this, flatArgs(dims));
  }
  /** See ops.transpose (default: the last two axes). */
  transpose(a = -2, b = -1): Tensor {
    return core.transpose(this, a, b);
  }
  get T(): Tensor {
    return core.transpose(this, -2, -1);
  }
  /** Elements start, start + step, ... before end along `axis` (a view). */
  slice(axis: number, start: number, end?: number, step = 1): Tensor {
    return core.slice(this, axis, start, end ?? this.shape[axis < 0 ? axis + this.ndim : axis], step);
  }
  /** A broadcast view of this tensor in a larger shape (size-1 axes repeated without copying). */
  expand(...shape: number[] | [number[]]): Tensor {
    return core.expand(this, flatArgs(shape));
  }
  /** See ops.unsqueeze. */
  unsqueeze(axis: number): Tensor {
    return core.unsqueeze(this, axis);
  }
  /** See ops.squeeze. */
  squeeze(axis?: number): Tensor {
    return core.squeeze(this, axis);
  }
  /** See ops.flatten. */
  flatten(startAxis = 0, endAxis = -1): Tensor {
    return core.flatten(this, startAxis, endAxis);
  }
  /** See ops.contiguous. */
  contiguous(): Tensor {
    return this.isContiguous() ? this : core.contiguous(this);
  }
  /** Same storage, cut from the tape. */
  detach(): Tensor {
    return core.alias(this, this.shape, this.strides, this.offset);
  }
}

function flatArgs(a: number[] | [number[]]): number[] {
  return Array.isArray(a[0]) ? (a[0] as number[]) : (a as number[]);
}
