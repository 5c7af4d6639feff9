// Shared test machinery: one engine per test file, random inputs, comparison against float64
// references, and gradient checks of every backward against central finite differences of the
// float64 reference (so the numerical side carries no f32 noise).

import { expect } from 'vitest';
import { Engine, Rng, type Tensor } from '../engine/index.js';
import { Nd } from './ref.js';

let shared: Promise<Engine> | null = null;
export function engine(): Promise<Engine> {
  shared ??= Engine.create();
  return shared;
}

/** A second engine forced onto the GPU kernel variants, so lavapipe runs cover them too. */
let sharedGpuVariants: Promise<Engine> | null = null;
export function gpuVariantEngine(): Promise<Engine> {
  sharedGpuVariants ??= Engine.create({ kernels: 'gpu' });
  return sharedGpuVariants;
}

/** Values in ±[0.1, 1.1] with random sign: never zero, never tiny (keeps FD and division well-posed). */
export function randNd(shape: number[], rng: Rng, opts: { positive?: boolean; scale?: number } = {}): Nd {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const mag = (0.1 + rng.uniform()) * (opts.scale ?? 1);
    d[i] = opts.positive || rng.uniform() < 0.5 ? mag : -mag;
  }
  return new Nd(d, [...shape]);
}

export function toGpu(e: Engine, x: Nd, requiresGrad = false): Tensor {
  return e.tensor(Float32Array.from(x.data), x.shape, { requiresGrad });
}

export async function fromGpu(t: Tensor): Promise<Nd> {
  return Nd.from(await t.toArray(), [...t.shape]);
}

/** max |a-b| / (atol + rtol·|b|) must stay ≤ 1; reports the worst element. */
export function expectClose(actual: Nd | ArrayLike<number>, expected: Nd, tol: { rtol?: number; atol?: number } = {}, label = ''): void {
  const rtol = tol.rtol ?? 1e-4;
  const atol = tol.atol ?? 1e-5;
  const a = actual instanceof Nd ? actual : Nd.from(actual, expected.shape);
  if (actual instanceof Nd) expect(a.shape, `${label} shape`).toEqual(expected.shape);
  expect(a.size, `${label} size`).toBe(expected.size);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.size; i++) {
    const err = Math.abs(a.data[i] - expected.data[i]) / (atol + rtol * Math.abs(expected.data[i]));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  if (!(worst <= 1)) {
    throw new Error(
      `${label} mismatch at ${at} (index ${expected.index(at)}): got ${a.data[at]}, expected ${expected.data[at]} (rtol ${rtol}, atol ${atol})`,
    );
  }
}

/**
 * Check the GPU backward of `gpuFn` against the float64 reference `refFn`: the loss is Σ out·W for a
 * fixed random W, so every output element contributes. Numerical gradients are central differences of
 * the reference (ε = 1e-6 in float64), at up to `maxProbes` random positions per input.
 */
export async function gradcheck(
  e: Engine,
  inputs: Nd[],
  gpuFn: (...xs: Tensor[]) => Tensor,
  refFn: (...xs: Nd[]) => Nd,
  opts: { rtol?: number; atol?: number; maxProbes?: number; seed?: number; wrt?: number[] } = {},
): Promise<void> {
  const rng = new Rng(opts.seed ?? 7);
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  const outRef = refFn(...inputs);
  const w = randNd(outRef.shape, rng);
  const lossRef = (xs: Nd[]) => {
    const o = refFn(...xs);
    let s = 0;
    for (let i = 0; i < o.size; i++) s += o.data[i] * w.data[i];
    return s;
  };
  const grads = await e.scopeAsync(async () => {
    const ts = inputs.map((x, i) => toGpu(e, x, wrt.includes(i)));
    const out = gpuFn(...ts);
    expect([...out.shape]).toEqual(outRef.shape);
    out.backward(toGpu(e, w));
    const gs: (Nd | null)[] = [];
    for (const t of ts) gs.push(t.grad ? await fromGpu(t.grad) : null);
    for (const t of ts) {
      t.grad?.dispose();
      t.dispose();
    }
    return gs;
  });
  for (const i of wrt) {
    const g = grads[i];
    expect(g, `gradient of input ${i}`).not.toBeNull();
    const x = inputs[i];
    const probes = Math.min(x.size, opts.maxProbes ?? 24);
    const positions = x.size <= probes ? [...Array(x.size).keys()] : [...Array(probes)].map(() => rng.int(x.size));
    const num = new Float64Array(positions.length);
    const ana = new Float64Array(positions.length);
    positions.forEach((p, k) => {
      const eps = 1e-6;
      const plus = inputs.map((y) => y);
      const xp = Nd.from(x.data, x.shape);
      xp.data[p] += eps;
      plus[i] = xp;
      const minus = inputs.map((y) => y);
      const xm = Nd.from(x.data, x.shape);
      xm.data[p] -= eps;
      minus[i] = xm;
      num[k] = (lossRef(plus) - lossRef(minus)) / (2 * eps);
      ana[k] = g!.data[p];
    });
    expectClose(new Nd(ana, [ana.length]), new Nd(num, [num.length]), { rtol: opts.rtol ?? 2e-3, atol: opts.atol ?? 2e-3 }, `grad of input ${i}`);
  }
}
