// How the self-check measures: the tests' comparison (max |a−b| / (atol + rtol·|b|) must stay ≤ 1) as a
// number rather than an assertion, so a run reports every check's worst error instead of stopping at the
// first, and the tests' gradient check (Σ out·W against central differences of the float64 reference).

import { Rng, type Engine, type Tensor } from '../../engine/index.js';
import { Nd } from '../ref.js';

export interface Tolerance {
  rtol: number;
  atol: number;
}

/** One comparison: the largest |got − expected|, and the largest of that over atol + rtol·|expected| (≤ 1 passes). */
export interface Compared {
  maxAbs: number;
  worst: number;
  /** A shape or size mismatch, or a non-finite value: the check fails with this. */
  problem?: string;
}

export function compare(got: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): Compared {
  if (got.length !== expected.length) return { maxAbs: Infinity, worst: Infinity, problem: `${got.length} values, expected ${expected.length}` };
  let maxAbs = 0;
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - expected[i]);
    if (!Number.isFinite(got[i])) return { maxAbs: Infinity, worst: Infinity, problem: `value ${got[i]} at ${i}` };
    maxAbs = Math.max(maxAbs, d);
    worst = Math.max(worst, d / (tol.atol + tol.rtol * Math.abs(expected[i])));
  }
  return { maxAbs, worst };
}

/** The worse of two comparisons (the first problem wins). */
export function worse(a: Compared, b: Compared): Compared {
  if (a.problem) return a;
  if (b.problem) return b;
  return { maxAbs: Math.max(a.maxAbs, b.maxAbs), worst: Math.max(a.worst, b.worst) };
}

/** Values in ±[0.1, 1.1] with random sign, as the tests' randNd draws them. */
export function randNd(shape: number[], rng: Rng, opts: { positive?: boolean } = {}): Nd {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const mag = 0.1 + rng.uniform();
    d[i] = opts.positive || rng.uniform() < 0.5 ? mag : -mag;
  }
  return new Nd(d, [...shape]);
}

export const toGpu = (e: Engine, x: Nd, requiresGrad = false): Tensor => e.tensor(Float32Array.from(x.data), x.shape, { requiresGrad });

/**
 * The forward of `gpuFn` against `refFn` on `inputs`, and (unless `grad` is false) the gradients of
 * Σ out·W for a fixed random W at up to `probes` positions per input against central differences
 * (ε = 1e-6) of the float64 reference.
 */
export async function checkOp(
  e: Engine,
  inputs: Nd[],
  gpuFn: (...xs: Tensor[]) => Tensor,
  refFn: (...xs: Nd[]) => Nd,
  tol: { fwd: Tolerance; grad?: Tolerance | false; probes?: number; wrt?: number[] },
): Promise<{ fwd: Compared; grad: Compared | null }> {
  const rng = new Rng(7);
  const outRef = refFn(...inputs);
  const w = randNd(outRef.shape, rng);
  const gradTol = tol.grad === undefined ? { rtol: 2e-3, atol: 2e-3 } : tol.grad;
  const wrt = tol.wrt ?? inputs.map((_, i) => i);
  const [out, grads] = await e.scopeAsync(async () => {
    const ts = inputs.map((x, i) => toGpu(e, x, gradTol !== false && wrt.includes(i)));
    const y = gpuFn(...ts);
    const values = y.shape.join() === outRef.shape.join() ? await y.toArray() : null;
    if (gradTol !== false) y.backward(toGpu(e, w));
    const gs: (Float32Array | null)[] = [];
    for (const t of ts) gs.push(t.grad ? ((await t.grad.toArray()) as Float32Array) : null);
    return [values ? Float32Array.from(values) : `shape [${y.shape}], expected [${outRef.shape}]`, gs] as const;
  });
  const fwd = typeof out === 'string' ? { maxAbs: Infinity, worst: Infinity, problem: out } : compare(out, outRef.data, tol.fwd);
  if (gradTol === false) return { fwd, grad: null };
  const loss = (xs: Nd[]) => {
    const o = refFn(...xs);
    let s = 0;
    for (let i = 0; i < o.size; i++) s += o.data[i] * w.data[i];
    return s;
  };
  let grad: Compared = { maxAbs: 0, worst: 0 };
  for (const i of wrt) {
    const g = grads[i];
    if (!g) {
      grad = worse(grad, { maxAbs: Infinity, worst: Infinity, problem: `no gradient for input ${i}` });
      continue;
    }
    const x = inputs[i];
    const n = Math.min(x.size, tol.probes ?? 12);
    const at = x.size <= n ? [...Array(x.size).keys()] : [...Array(n)].map(() => rng.int(x.size));
    const numeric = at.map((p) => {
      const shifted = (d: number) => {
        const xs = [...inputs];
        const y = Nd.from(x.data, x.shape);
        y.data[p] += d;
        xs[i] = y;
        return loss(xs);
      };
      return (shifted(1e-6) - shifted(-1e-6)) / 2e-6;
    });
    grad = worse(grad, compare(at.map((p) => g[p]), numeric, gradTol));
  }
  return { fwd, grad };
}
