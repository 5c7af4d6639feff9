// Shared by test/heads.test.ts and test/losses.test.ts: the golden fixtures written by
// scripts/fixtures/losses_fixture.py, the weight/input formula both sides use, and the comparison.

import { readFileSync } from 'node:fs';
import { Tensor, type Engine } from '../engine/index.js';
import { expectClose } from './helpers.js';
import { Nd } from './ref.js';

export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

/** The generator's formula: scale·sin((0.37 + 0.05k)·i + 0.11k + 0.2) + offset, rounded to f32. */
export function formula(shape: number[], k: number, scale = 1, offset = 0): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => offset + scale * Math.sin((0.37 + 0.05 * k) * i + 0.11 * k + 0.2));
}

export function formulaTensor(e: Engine, shape: number[], k: number, scale = 1, opts: { requiresGrad?: boolean } = {}): Tensor {
  return e.tensor(formula(shape, k, scale), shape, opts);
}

export function formulaNd(shape: number[], k: number, scale = 1): Nd {
  return Nd.from(formula(shape, k, scale), shape);
}

/**
 * Relative error 1e-4 against PyTorch, with an absolute floor of 1e-5 × the largest |expected| of the
 * tensor: entries near zero (where a relative bound means nothing in f32) are judged against the
 * tensor's scale instead. A tensor that is zero in exact arithmetic (PyTorch's float64 gives ~1e-16)
 * has no scale of its own: `scale` then supplies the one of the computation it comes from.
 */
export async function expectMatches(
  actual: Tensor | ArrayLike<number> | number,
  expected: ArrayLike<number> | number,
  label: string,
  scale = 0,
): Promise<void> {
  const exp = typeof expected === 'number' ? [expected] : Array.from(expected);
  const got = typeof actual === 'number' ? [actual] : Array.from(actual instanceof Tensor ? await actual.toArray() : actual);
  scale = Math.max(scale, ...exp.map(Math.abs));
  expectClose(got, Nd.from(exp, [exp.length]), { rtol: 1e-4, atol: 1e-5 * scale }, label);
}

export { hashUniform } from './fixture-formulas.js';
