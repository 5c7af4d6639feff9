// concat / stack copy each input into its window of a fresh output with the strided copy kernel
// (copyInto), so non-contiguous inputs cost no extra copy; their backward hands each input a view of
// the gradient (no kernel). split / chunk are slices (views) of their input.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt, normAxis, sameShape } from '../shape.js';
import { checkInputs } from './map.js';
import { alias, copyInto, slice } from './view.js';

/** Tape-free view of t restricted to [start, start + len) along axis a. */
function narrow(t: Tensor, a: number, start: number, len: number): Tensor {
  const shape = [...t.shape];
  shape[a] = len;
  return alias(t, shape, t.strides, t.offset + start * t.strides[a]);
}

/** Tape-free view of t at position k of axis a, the axis removed (torch.select). */
function select(t: Tensor, a: number, k: number): Tensor {
  const keep = (_: number, i: number) => i !== a;
  return alias(t, t.shape.filter(keep), t.strides.filter(keep), t.offset + k * t.strides[a]);
}

function shapesOf(tensors: Tensor[]): string {
  return tensors.map((t) => fmt(t.shape)).join(', ');
}

function checkDtypes(op: string, tensors: Tensor[]): void {
  if (tensors.some((t) => t.dtype !== tensors[0].dtype)) {
    throw new Error(`${op}: inputs mix dtypes (${tensors.map((t) => t.dtype).join(', ')})`);
  }
}

/** Join tensors along an existing axis; every other axis must match (torch.cat). */
export function concat(tensors: Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('concat: needs at least one tensor');
  const engine = checkInputs('concat', tensors);
  const first = tensors[0];
  if (first.ndim === 0) throw new Error(`concat: cannot concatenate 0-d tensors (shapes ${shapesOf(tensors)})`);
  const a = normAxis('concat', axis, first.ndim);
  const fits = (t: Tensor) => t.ndim === first.ndim && t.shape.every((d, i) => i === a || d === first.shape[i]);
  if (!tensors.every(fits)) {
    throw new Error(`concat: shapes ${shapesOf(tensors)} must match except along axis ${axis}`);
  }
  checkDtypes('concat', tensors);
  const shape = [...first.shape];
  shape[a] = tensors.reduce((s, t) => s + t.shape[a], 0);
  const out = engine.empty(shape, first.dtype);
  const starts: number[] = [];
  let start = 0;
  for (const t of tensors) {
    starts.push(start);
    const window = narrow(out, a, start, t.shape[a]);
    copyInto(window, t);
    window.dispose();
    start += t.shape[a];
  }
  return record(out, 'concat', tensors, (g) => tensors.map((t, k) => narrow(g, a, starts[k], t.shape[a])));
}

/** Join equally shaped tensors along a new axis (torch.stack). */
export function stack(tensors: Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: needs at least one tensor');
  const engine = checkInputs('stack', tensors);
  const first = tensors[0];
  if (!tensors.every((t) => sameShape(t.shape, first.shape))) {
    throw new Error(`stack: shapes ${shapesOf(tensors)} must all be equal`);
  }
  checkDtypes('stack', tensors);
  const a = normAxis('stack', axis, first.ndim + 1);
  const shape = [...first.shape];
  shape.splice(a, 0, tensors.length);
  const out = engine.empty(shape, first.dtype);
  tensors.forEach((t, k) => {
    const window = select(out, a, k);
    copyInto(window, t);
    window.dispose();
  });
  return record(out, 'stack', tensors, (g) => tensors.map((_, k) => select(g, a, k)));
}

/**
 * Views of consecutive pieces of x along `axis` (torch.split): `sizes` lists the piece lengths (they
 * must sum to the axis length), or is one length for every piece (the last may be shorter).
 */
export function split(x: Tensor, sizes: number | number[], axis = 0): Tensor[] {
  checkInputs('split', [x]);
  if (x.ndim === 0) throw new Error(`split: cannot split a 0-d tensor ${x}`);
  const a = normAxis('split', axis, x.ndim);
  const dim = x.shape[a];
  let lens: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes < 1) throw new Error(`split: piece size must be a positive integer, got ${sizes}`);
    lens = [];
    for (let s = 0; s < dim; s += sizes) lens.push(Math.min(sizes, dim - s));
  } else {
    lens = sizes;
    const total = lens.reduce((s, l) => s + l, 0);
    if (lens.some((l) => !Number.isInteger(l) || l < 0) || total !== dim) {
      throw new Error(`split: sizes ${fmt(lens)} sum to ${total}, but axis ${axis} of ${fmt(x.shape)} has ${dim}`);
    }
  }
  let start = 0;
  return lens.map((l) => {
    const piece = slice(x, a, start, start + l);
    start += l;
    return piece;
  });
}

/** At most `chunks` views of equal length ceil(dim / chunks) along `axis`, the last possibly shorter (torch.chunk). */
export function chunk(x: Tensor, chunks: number, axis = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks < 1) throw new Error(`chunk: chunks must be a positive integer, got ${chunks}`);
  const dim = x.shape[normAxis('chunk', axis, x.ndim)];
  return split(x, Math.max(Math.ceil(dim / chunks), 1), axis);
}
