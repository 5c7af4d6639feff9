// The self-check (test/selfcheck/, dist/selfcheck.js) on lavapipe with the GPU kernel variants forced:
// every row passes, the rows cover every kernel family and both fixtures, and a wrong result is
// reported as a failure with its error rather than passed over.

import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ops } from '../engine/index.js';
import { gpuVariantEngine } from './helpers.js';
import { runSelfCheck, type Check } from './selfcheck/index.js';
import { compare, toGpu } from './selfcheck/measure.js';
import { Nd } from './ref.js';

describe('self-check', () => {
  it('passes every check with the GPU kernel variants on lavapipe', async () => {
    const e = await gpuVariantEngine();
    const results = await runSelfCheck(e, { fixtures: resolve(import.meta.dirname, 'fixtures') });
    const failed = results.filter((r) => !r.pass);
    expect(failed, JSON.stringify(failed)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(37);
    expect(results.every((r) => Number.isFinite(r.worst) && r.worst <= 1)).toBe(true);
    expect(results.map((r) => r.name)).toContain('resnet18 small-image backward (PyTorch fixture)');
    expect(results.map((r) => r.name)).toContain('vit_tiny/16 backward at 32 px (PyTorch fixture)');
  });

  it('reports a wrong result as a failure with its error, and an exception as a problem', async () => {
    const e = await gpuVariantEngine();
    const x = Nd.from([1, 2, 3, 4], [4]);
    const checks: Check[] = [
      {
        name: 'relu against a reference that is off by 1e-3',
        tol: { rtol: 1e-4, atol: 1e-5 },
        run: async (eng) => compare(await e.scopeAsync(async () => ops.relu(toGpu(eng, x)).toArray()), x.data.map((v) => v + 1e-3), { rtol: 1e-4, atol: 1e-5 }),
      },
      { name: 'a check that throws', tol: { rtol: 1e-4, atol: 1e-5 }, run: async () => { throw new Error('boom'); } },
    ];
    const [wrong, thrown] = await runSelfCheck(e, { checks });
    expect(wrong.pass).toBe(false);
    expect(wrong.max_abs).toBeCloseTo(1e-3, 6);
    expect(wrong.worst).toBeGreaterThan(1);
    expect(thrown).toMatchObject({ pass: false, problem: 'boom' });
  });
});
