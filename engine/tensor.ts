// Tensors: a shape, strides and an element offset into refcounted GPU storage. Views (reshape,
// permute, slice, expand) share storage; every op's output is a fresh contiguous tensor.

import type { Engine } from './engine.js';
import type { BackwardOptions } from './autograd.js';
import { contiguousStrides, fmt, numel, type Shape } from './shape.js';
import * as view from './ops/view.js';

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
  private disposedFlag = false;

  constructor(
    readonly engine: Engine,
    readonly storage: Storage,
    shape: Shape,
    strides?: Shape,
    readonly offset = 0,
    readonly dtype: DType = 'f32',
  ) {
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
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

  toString(): string {
    return `Tensor(${fmt(this.shape)}${this.dtype === 'f32' ? '' : `, ${this.dtype}`}${this.name ? `, ${this.name}` : ''})`;
  }

  /** Throw if this tensor can no longer be used by `op`. */
  assertAlive(op: string): void {
    if (this.disposedFlag) throw new Error(`${op}: ${this} was disposed and cannot be used`);
  }

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
    const t = this.isContiguous() ? this : view.contiguous(this);
    const bytes = await this.engine.backend.read(t.buffer, t.offset * 4, t.size * 4);
    if (t !== this) t.dispose();
    return this.dtype === 'i32' ? new Int32Array(bytes) : new Float32Array(bytes);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: ${this} has ${this.size} elements, not 1`);
    return (await this.toArray())[0];
  }

  /** Run the tape backward from this tensor (a scalar unless a gradient is given). */
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    this.engine.backward(this, grad, opts);
  }

  // ---------------------------------------------------------------- views (see ops/view.ts)

  reshape(...shape: number[] | [number[]]): Tensor {
    return view.reshape(this, flatArgs(shape));
  }
  permute(...dims: number[] | [number[]]): Tensor {
    return view.permute(this, flatArgs(dims));
  }
  transpose(a = -2, b = -1): Tensor {
    return view.transpose(this, a, b);
  }
  get T(): Tensor {
    return view.transpose(this, -2, -1);
  }
  slice(axis: number, start: number, end?: number, step = 1): Tensor {
    return view.slice(this, axis, start, end ?? this.shape[axis < 0 ? axis + this.ndim : axis], step);
  }
  expand(...shape: number[] | [number[]]): Tensor {
    return view.expand(this, flatArgs(shape));
  }
  unsqueeze(axis: number): Tensor {
    return view.unsqueeze(this, axis);
  }
  squeeze(axis?: number): Tensor {
    return view.squeeze(this, axis);
  }
  flatten(startAxis = 0, endAxis = -1): Tensor {
    return view.flatten(this, startAxis, endAxis);
  }
  contiguous(): Tensor {
    return this.isContiguous() ? this : view.contiguous(this);
  }
  /** Same storage, cut from the tape. */
  detach(): Tensor {
    return view.alias(this, this.shape, this.strides, this.offset);
  }
}

function flatArgs(a: number[] | [number[]]): number[] {
  return Array.isArray(a[0]) ? (a[0] as number[]) : (a as number[]);
}
