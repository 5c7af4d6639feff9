// Candidate view combinations of the HVP step (docs/method.md §1-2), enumerated lexicographically on the CPU
// (tiny: at most a few hundred rows) and uploaded as an i32 table [C, n] that every scorer, the
// selection and the gather share. Row c lists the view indices of combination c; views are stacked
// view-major everywhere ([V, B, ...] or [V·B, ...], row v·B + b = view v of image b).

import type { Engine, Tensor } from '../../engine/index.js';
import type { Rng } from '../../engine/index.js';

/** Candidate view indices of one combination. */
export type Combination = number[];

/** itertools.combinations(items, k), in its order. */
export function itertoolsCombinations(items: readonly number[], k: number): Combination[] {
  if (k < 0 || k > items.length) return [];
  const out: Combination[] = [];
  const pick: number[] = [];
  const walk = (start: number) => {
    if (pick.length === k) {
      out.push([...pick]);
      return;
    }
    for (let i = start; i <= items.length - (k - pick.length); i++) {
      pick.push(items[i]);
      walk(i + 1);
      pick.pop();
    }
  };
  walk(0);
  return out;
}

function checkCount(op: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${op}: ${name} must be an integer ≥ ${min}, got ${v}`);
}

/**
 * SimSiam / SimCLR candidates: every pair i < j of V views, or with `anchor` only (0, j) (view 0 is
 * fixed and its partner is chosen).
 */
export function pairCombinations(views: number, opts: { anchor?: boolean } = {}): Combination[] {
  checkCount('pairCombinations', 'views', views, 2);
  if (opts.anchor) return Array.from({ length: views - 1 }, (_, j) => [0, j + 1]);
  return itertoolsCombinations([...Array(views).keys()], 2);
}

function globalSlots(op: string, globals: number): [number[], number[]] {
  checkCount(op, 'globals', globals, 2);
  if (globals % 2 !== 0) throw new Error(`${op}: the number of global views must be even (slot A = even, slot B = odd), got ${globals}`);
  const all = [...Array(globals).keys()];
  return [all.filter((g) => g % 2 === 0), all.filter((g) => g % 2 === 1)];
}

/**
 * DINO candidates: product(slotA, slotB, combinations(locals, nLocal)) with slot A the even global
 * indices, slot B the odd ones and locals the student view indices G .. G+L-1. A row is
 * [gA, gB, l1, .., l_nLocal].
 */
export function dinoCombinations(globals: number, locals: number, nLocal: number): Combination[] {
  const [slotA, slotB] = globalSlots('dinoCombinations', globals);
  checkCount('dinoCombinations', 'locals', locals, 0);
  if (!Number.isInteger(nLocal) || nLocal < 0 || nLocal > locals) {
    throw new Error(`dinoCombinations: cannot choose ${nLocal} of ${locals} local views (use 0 .. ${locals})`);
  }
  const localSets = itertoolsCombinations(
    Array.from({ length: locals }, (_, l) => globals + l),
    nLocal,
  );
  const out: Combination[] = [];
  for (const a of slotA) for (const b of slotB) for (const ls of localSets) out.push([a, b, ...ls]);
  return out;
}

/** iBOT candidates: the global pairs product(slotA, slotB); every local view is always kept. */
export function ibotCombinations(globals: number): Combination[] {
  const [slotA, slotB] = globalSlots('ibotCombinations', globals);
  return slotA.flatMap((a) => slotB.map((b) => [a, b]));
}

/**
 * `limit K`: K of C combination indices drawn uniformly without replacement (a partial Fisher-Yates
 * shuffle), returned in increasing order so the subset stays lexicographic. K = 0 or K ≥ C keeps all.
 */
export function drawLimit(count: number, k: number, rng: Rng): number[] {
  checkCount('drawLimit', 'combination count', count, 1);
  checkCount('drawLimit', 'limit', k, 0);
  const all = [...Array(count).keys()];
  if (k === 0 || k >= count) return all;
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(count - i);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, k).sort((a, b) => a - b);
}

/** The rows of `combos` at `rows` (a drawLimit result). */
export function limitCombinations(combos: readonly Combination[], rows: readonly number[]): Combination[] {
  return rows.map((r) => {
    if (!Number.isInteger(r) || r < 0 || r >= combos.length) throw new Error(`limitCombinations: row ${r} is outside 0 .. ${combos.length - 1}`);
    return combos[r];
  });
}

/** Upload combinations (all of one length n) as the i32 table [C, n]. */
export function combinationTable(engine: Engine, combos: readonly (readonly number[])[]): Tensor {
  if (combos.length === 0) throw new Error('combinationTable: no combinations');
  const n = combos[0].length;
  if (n === 0 || combos.some((c) => c.length !== n)) {
    throw new Error(`combinationTable: every combination must list the same positive number of views, got lengths ${[...new Set(combos.map((c) => c.length))].join(', ')}`);
  }
  return engine.tensor(combos.flat(), [combos.length, n], { dtype: 'i32' });
}

/** Tables uploaded once per engine, by their rows (a method's combinations never change during a run). */
const uploaded = new WeakMap<Engine, Map<string, Tensor>>();

/**
 * The i32 table [C, n] of `combos`, uploaded on the first call for this engine and these rows and
 * kept: every scorer, the selection and the gather of every step then read the same tensor, and no
 * step uploads it again (an upload submits the batch of dispatches recorded so far).
 */
export function sharedCombinationTable(engine: Engine, combos: readonly (readonly number[])[]): Tensor {
  let byRows = uploaded.get(engine);
  if (!byRows) uploaded.set(engine, (byRows = new Map()));
  const key = combos.map((c) => c.join(',')).join(';');
  let t = byRows.get(key);
  if (!t || t.disposed) {
    t = engine.keep(combinationTable(engine, combos));
    byRows.set(key, t);
  }
  return t;
}
