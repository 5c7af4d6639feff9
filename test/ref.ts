// Float64 reference implementations on the CPU: a tiny strided-free ndarray (row-major Float64Array)
// with the few primitives every op's reference is built from. Deliberately naive: these define what
// "correct" means for the GPU kernels.

export class Nd {
  constructor(
    readonly data: Float64Array,
    readonly shape: number[],
  ) {
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`Nd: ${data.length} values for [${shape}]`);
  }
  static from(data: ArrayLike<number>, shape: number[]): Nd {
    return new Nd(Float64Array.from(data), [...shape]);
  }
  static zeros(shape: number[]): Nd {
    return new Nd(new Float64Array(shape.reduce((a, b) => a * b, 1)), [...shape]);
  }
  get size(): number {
    return this.data.length;
  }
  get strides(): number[] {
    const s = new Array<number>(this.shape.length);
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      s[i] = acc;
      acc *= this.shape[i];
    }
    return s;
  }
  /** Multi-index of a flat position. */
  index(flat: number): number[] {
    const idx = new Array<number>(this.shape.length);
    for (let d = this.shape.length - 1; d >= 0; d--) {
      idx[d] = flat % this.shape[d];
      flat = Math.floor(flat / this.shape[d]);
    }
    return idx;
  }
  at(idx: number[]): number {
    let o = 0;
    const st = this.strides;
    for (let d = 0; d < idx.length; d++) o += idx[d] * st[d];
    return this.data[o];
  }
  reshape(shape: number[]): Nd {
    return new Nd(this.data, shape);
  }
  map(f: (v: number, i: number) => number): Nd {
    return new Nd(this.data.map(f), [...this.shape]);
  }
  permute(dims: number[]): Nd {
    const shape = dims.map((d) => this.shape[d]);
    const out = Nd.zeros(shape);
    for (let i = 0; i < out.size; i++) {
      const idx = out.index(i);
      const src = new Array<number>(dims.length);
      dims.forEach((d, k) => (src[d] = idx[k]));
      out.data[i] = this.at(src);
    }
    return out;
  }
}

export function broadcastShape(...shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) s.forEach((d, i) => {
    const o = rank - s.length + i;
    if (d !== 1) out[o] = d;
  });
  return out;
}

/** Elementwise over broadcast inputs. */
export function zip(f: (...v: number[]) => number, ...xs: Nd[]): Nd {
  const shape = broadcastShape(...xs.map((x) => x.shape));
  const out = Nd.zeros(shape);
  for (let i = 0; i < out.size; i++) {
    const idx = out.index(i);
    const vals = xs.map((x) => {
      const lead = shape.length - x.shape.length;
      return x.at(x.shape.map((d, k) => (d === 1 ? 0 : idx[k + lead])));
    });
    out.data[i] = f(...vals);
  }
  return out;
}

/** Fold one axis with `f` (kept as size 1 when keepdim). */
export function reduce(x: Nd, axis: number, f: (vals: number[]) => number, keepdim = true): Nd {
  const shape = [...x.shape];
  shape[axis] = 1;
  const out = Nd.zeros(shape);
  for (let i = 0; i < out.size; i++) {
    const idx = out.index(i);
    const vals: number[] = [];
    for (let k = 0; k < x.shape[axis]; k++) {
      idx[axis] = k;
      vals.push(x.at(idx));
    }
    out.data[i] = f(vals);
  }
  return keepdim ? out : out.reshape(shape.filter((_, i) => i !== axis));
}

export const sumOf = (v: number[]) => v.reduce((a, b) => a + b, 0);

/** [.., m, k] @ [.., k, n] with equal (or absent) batch dims. */
export function matmulRef(a: Nd, b: Nd): Nd {
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  const batchShape = a.shape.length >= b.shape.length ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const aB = a.shape.length > 2 ? m * k : 0;
  const bB = b.shape.length > 2 ? k * n : 0;
  const out = Nd.zeros([...batchShape, m, n]);
  for (let bi = 0; bi < batch; bi++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[bi * aB + i * k + p] * b.data[bi * bB + p * n + j];
        out.data[bi * m * n + i * n + j] = s;
      }
  return out;
}

/** Per-channel mean and biased variance of x [N, C, ...]. */
export function channelStats(x: Nd): { mean: number[]; var: number[]; count: number } {
  const [n, c] = x.shape;
  const s = x.size / (n * c);
  const mean: number[] = [];
  const vr: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const v: number[] = [];
    for (let i = 0; i < n; i++) for (let k = 0; k < s; k++) v.push(x.data[(i * c + ch) * s + k]);
    const m = sumOf(v) / v.length;
    mean.push(m);
    vr.push(sumOf(v.map((t) => (t - m) ** 2)) / v.length);
  }
  return { mean, var: vr, count: n * s };
}
