// The self-check: the test suite's kernel and model checks as one function a built bundle can run on any
// adapter (dist/selfcheck.js; the GPU kit runs it first on the host), one row per check with its worst
// error against its tolerance. test/selfcheck.test.ts runs it on lavapipe.

import type { Engine } from '../../engine/index.js';
import { kernelChecks, type Check } from './kernels.js';

export type { Check };
import { modelChecks } from './models.js';

export interface CheckResult {
  name: string;
  /** Largest |ours − reference| (for the selection row: samples whose choice differs). */
  max_abs: number;
  /** Largest |ours − reference| / (atol + rtol·|reference|): the check passes at ≤ 1. */
  worst: number;
  rtol: number;
  atol: number;
  pass: boolean;
  /** Why a check failed outright (a shape mismatch, a non-finite value, an exception). */
  problem?: string;
}

export interface SelfCheckOptions {
  /** The PyTorch fixtures (test/fixtures of the checkout); without it the model rows are left out. */
  fixtures?: string;
  /** Only checks whose name contains this. */
  filter?: string;
  onResult?: (r: CheckResult) => void;
  /** The checks to run instead of allChecks(fixtures). */
  checks?: Check[];
}

export function allChecks(fixtures?: string): Check[] {
  return [...kernelChecks(), ...(fixtures ? modelChecks(fixtures) : [])];
}

export async function runSelfCheck(engine: Engine, opts: SelfCheckOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of (opts.checks ?? allChecks(opts.fixtures)).filter((c) => !opts.filter || c.name.includes(opts.filter))) {
    let r: CheckResult;
    try {
      const c = await check.run(engine);
      r = { name: check.name, max_abs: c.maxAbs, worst: c.worst, ...check.tol, pass: !c.problem && c.worst <= 1, ...(c.problem ? { problem: c.problem } : {}) };
    } catch (e) {
      r = { name: check.name, max_abs: NaN, worst: NaN, ...check.tol, pass: false, problem: e instanceof Error ? e.message : String(e) };
    }
    results.push(r);
    opts.onResult?.(r);
  }
  return results;
}

const sci = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));

/** One printed line: name, max error, tolerance, worst ratio, pass/FAIL. */
export function resultLine(r: CheckResult): string {
  const tol = `rtol ${r.rtol} atol ${r.atol}`;
  return `${r.pass ? 'pass' : 'FAIL'}  ${r.name.padEnd(52)} max err ${sci(r.max_abs).padStart(9)}  ${tol.padEnd(24)} err/tol ${Number.isFinite(r.worst) ? r.worst.toFixed(3) : String(r.worst)}${r.problem ? `  (${r.problem})` : ''}`;
}
