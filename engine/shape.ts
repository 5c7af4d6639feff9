// Shape arithmetic shared by tensors and ops.

/** Dimensions of a tensor. */
export type Shape = readonly number[];

// Shapes reach these functions as arrays of several internal kinds (literals, copies, results of
// map): indexed loops stay fast over all of them, where for-of allocates an iterator once a call
// site has seen too many kinds to be optimised for each.

/** Number of elements of `shape`. */
export function numel(shape: Shape): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i];
  return n;
}

/**
 * A copy of a shape or strides as an array literal up to rank 6, so that every tensor's arrays are of
 * one kind and of exactly their length (an array grown by push keeps room for more).
 */
export function copyDims(d: Shape): number[] {
  switch (d.length) {
    case 0: return [];
    case 1: return [d[0]];
    case 2: return [d[0], d[1]];
    case 3: return [d[0], d[1], d[2]];
    case 4: return [d[0], d[1], d[2], d[3]];
    case 5: return [d[0], d[1], d[2], d[3], d[4]];
    case 6: return [d[0], d[1], d[2], d[3], d[4], d[5]];
  }
  const out: number[] = [];
  for (let i = 0; i < d.length; i++) out.push(d[i]);
  return out;
}

/** Row-major strides of `shape`. */
export function contiguousStrides(shape: Shape): number[] {
  const n = shape.length;
  if (n === 0) return [];
  if (n === 1) return [1];
  if (n === 2) return [shape[1], 1];
  if (n === 3) return [shape[1] * shape[2], shape[2], 1];
  if (n === 4) return [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1];
  const s: number[] = [];
  for (let i = 0; i < n; i++) s.push(1);
  let acc = 1;
  for (let i = n - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** `shape` as text, e.g. [2, 3]. */
export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Whether two shapes are equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** NumPy broadcasting of any number of shapes; throws naming the op and every shape. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        throw new Error(`${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together`);
      }
    }
  }
  return out;
}

/** Normalise a possibly negative axis; throws naming the op. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new Error(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

/** Throws, naming `op`, unless every dimension is a non-negative integer. */
export function checkShape(op: string, shape: Shape): void {
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: invalid shape ${fmt(shape)}`);
  }
}

/**
 * Merge adjacent axes that every operand walks contiguously with each other, and drop size-1 axes:
 * a strided kernel then does one div/mod per remaining axis instead of one per original axis
 * (a transposed matrix stays 2-D, a contiguous slice of a 4-D tensor becomes 1-D).
 */
export function collapseDims(shape: Shape, strides: Shape[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [1]) };
  return { shape: outShape, strides: outStrides };
}
