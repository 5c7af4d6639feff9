// hvp/select: combination enumeration, every fused scorer against float64 brute force of docs/method.md §2 and
// against the per-sample losses of hvp/losses on selected views, the per-sample selection (ties,
// NaN), the limit draw, the anchor variant, and the GPU gather against CPU indexing.

import { describe, expect, it } from 'vitest';
import { Rng, type Tensor } from '../engine/index.js';
import { concat, copyInto, permute, reshape, slice } from '../engine/ops/index.js';
import { DinoLoss, IbotLoss, ntXentLoss, simsiamLoss } from '../hvp/losses/index.js';
import {
  combinationTable,
  dinoCombinations,
  drawLimit,
  gatherSelected,
  ibotCombinations,
  itertoolsCombinations,
  limitCombinations,
  pairCombinations,
  readSelection,
  scoreDino,
  scoreIbot,
  scoreSimClr,
  scoreSimSiam,
  selectCombination,
} from '../hvp/select/index.js';
import { engine, expectClose, fromGpu, randNd, toGpu } from './helpers.js';
import { Nd } from './ref.js';
import { dinoScoresRef, ibotScoresRef, simclrScoresRef, simsiamScoresRef } from './select-ref.js';

/** Bit-equal f32 values (expectClose divides by atol, so it cannot be 0). */
const EXACT = { rtol: 0, atol: 1e-30 };

/** One view [B, ...] of a view-major [V, B, ...] tensor. */
const viewOf = (x: Tensor, v: number) => reshape(slice(x, 0, v, v + 1), x.shape.slice(1));

/** Column c of scores [B, C] as an Nd [B]. */
function column(s: Nd, c: number): Nd {
  const [b, n] = s.shape;
  return Nd.from(Array.from({ length: b }, (_, i) => s.data[i * n + c]), [b]);
}

describe('combinations', () => {
  it('enumerates pairs, anchor pairs, DINO and iBOT combinations lexicographically', () => {
    expect(pairCombinations(4)).toEqual([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
    expect(pairCombinations(4, { anchor: true })).toEqual([[0, 1], [0, 2], [0, 3]]);
    expect(itertoolsCombinations([5, 6, 7, 8], 3)).toEqual([[5, 6, 7], [5, 6, 8], [5, 7, 8], [6, 7, 8]]);
    expect(dinoCombinations(2, 0, 0)).toEqual([[0, 1]]);
    const d = dinoCombinations(4, 3, 2);
    expect(d.slice(0, 4)).toEqual([[0, 1, 4, 5], [0, 1, 4, 6], [0, 1, 5, 6], [0, 3, 4, 5]]);
    expect(d.length).toBe(2 * 2 * 3);
    expect(d[d.length - 1]).toEqual([2, 3, 5, 6]);
    expect(ibotCombinations(4)).toEqual([[0, 1], [0, 3], [2, 1], [2, 3]]);
    expect(() => dinoCombinations(3, 2, 1)).toThrow(/even/);
    expect(() => dinoCombinations(2, 2, 3)).toThrow(/choose 3 of 2/);
  });

  it('limit draws K distinct sorted rows, uniformly, and 0 keeps all', () => {
    const rng = new Rng(3);
    expect(drawLimit(6, 0, rng)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(drawLimit(6, 9, rng)).toEqual([0, 1, 2, 3, 4, 5]);
    const counts = new Array(10).fill(0);
    const trials = 4000;
    for (let t = 0; t < trials; t++) {
      const rows = drawLimit(10, 3, rng);
      expect(rows.length).toBe(3);
      expect(new Set(rows).size).toBe(3);
      expect([...rows].sort((a, b) => a - b)).toEqual(rows);
      for (const r of rows) counts[r]++;
    }
    // Each row is drawn with probability 3/10: 1200 ± 4.5σ (σ ≈ 29).
    for (const c of counts) expect(Math.abs(c - 1200)).toBeLessThan(130);
    expect(limitCombinations(pairCombinations(4), [1, 4])).toEqual([[0, 2], [1, 3]]);
  });
});

describe('scoreSimSiam', () => {
  it('matches the float64 formula for every pair, with strided inputs, and simsiamLoss per sample', async () => {
    const e = await engine();
    const rng = new Rng(11);
    const [v, b, d] = [5, 7, 13];
    const p = randNd([v, b, d], rng);
    const z = randNd([v, b, d], rng);
    const combos = pairCombinations(v);
    await e.scopeAsync(async () => {
      const pg = toGpu(e, p);
      // z uploaded as [B, V, D] and permuted: a non-contiguous [V, B, D] view.
      const zg = permute(toGpu(e, z.permute([1, 0, 2])), [1, 0, 2]);
      expect(zg.isContiguous()).toBe(false);
      const s = await fromGpu(scoreSimSiam(pg, zg, combinationTable(e, combos)));
      expectClose(s, simsiamScoresRef(p, z, combos), { rtol: 1e-4, atol: 1e-5 }, 'scores');
      for (const c of [0, 5, 9]) {
        const [i, j] = combos[c];
        const loss = simsiamLoss(viewOf(pg, i), viewOf(pg, j), viewOf(zg, i), viewOf(zg, j), { perSample: true });
        expectClose(column(s, c), await fromGpu(loss), { rtol: 1e-4, atol: 1e-5 }, `pair ${combos[c]}`);
      }
      // Anchor and limited tables score the same pairs as the columns of the full table.
      const anchor = await fromGpu(scoreSimSiam(pg, zg, pairCombinations(v, { anchor: true })));
      for (let c = 0; c < v - 1; c++) expectClose(column(anchor, c), column(s, c), { rtol: 1e-6, atol: 1e-7 }, `anchor ${c}`);
      const rows = [2, 7];
      const lim = await fromGpu(scoreSimSiam(pg, zg, limitCombinations(combos, rows)));
      rows.forEach((r, c) => expectClose(column(lim, c), column(s, r), { rtol: 1e-6, atol: 1e-7 }, `limit ${r}`));
    });
  });
});

describe('scoreSimClr', () => {
  it('matches NT-Xent on each pair (float64 and ntXentLoss per sample)', async () => {
    const e = await engine();
    const rng = new Rng(12);
    const [v, b, d] = [4, 6, 11];
    const z = randNd([v, b, d], rng);
    const combos = pairCombinations(v);
    await e.scopeAsync(async () => {
      const zg = toGpu(e, z);
      const s = await fromGpu(scoreSimClr(zg, combos, 0.1));
      expectClose(s, simclrScoresRef(z, combos, 0.1), { rtol: 2e-4, atol: 2e-4 }, 'scores');
      for (const c of [0, 4, 5]) {
        const [i, j] = combos[c];
        const loss = ntXentLoss(viewOf(zg, i), viewOf(zg, j), { temperature: 0.1, perSample: true });
        expectClose(column(s, c), await fromGpu(loss), { rtol: 2e-4, atol: 2e-4 }, `pair ${combos[c]}`);
      }
      // τ = 0.5 and one sample per view (each block then holds only the positive or nothing).
      const z1 = randNd([3, 1, 5], rng);
      expectClose(await fromGpu(scoreSimClr(toGpu(e, z1), pairCombinations(3), 0.5)), simclrScoresRef(z1, pairCombinations(3), 0.5), { rtol: 1e-4, atol: 1e-5 }, 'B = 1');
    });
  });
});

const temps = { teacherTemp: 0.04, studentTemp: 0.1 };

async function setCenter(center: Tensor, values: Nd): Promise<void> {
  copyInto(center, reshape(toGpu(center.engine, values), [...center.shape]));
}

describe('scoreDino', () => {
  it('matches the float64 double sum and DinoLoss per sample on the selected views', async () => {
    const e = await engine();
    const rng = new Rng(13);
    const [g, l, b, k] = [4, 3, 5, 37];
    const student = randNd([g + l, b, k], rng, { scale: 3 });
    const teacher = randNd([g, b, k], rng, { scale: 3 });
    const center = randNd([k], rng, { scale: 0.5 });
    const combos = dinoCombinations(g, l, 2);
    await e.scopeAsync(async () => {
      const [sg, tg] = [toGpu(e, student), toGpu(e, teacher)];
      const s = await fromGpu(scoreDino(sg, tg, toGpu(e, center), temps, combinationTable(e, combos)));
      expectClose(s, dinoScoresRef(student, teacher, center, temps, combos), { rtol: 2e-4, atol: 2e-4 }, 'scores');
      const loss = new DinoLoss(e, { outDim: k, ncrops: 4, nGlobal: 2, teacherTemp: 0.04, warmupTeacherTemp: 0.04, epochs: 1, studentTemp: 0.1 });
      await setCenter(loss.center, center);
      for (const c of [0, 5, combos.length - 1]) {
        const row = combos[c];
        const sOut = concat(row.map((v) => viewOf(sg, v)), 0);
        const tOut = concat(row.slice(0, 2).map((v) => viewOf(tg, v)), 0);
        expectClose(column(s, c), await fromGpu(loss.forward(sOut, tOut, 0, { perSample: true })), { rtol: 2e-4, atol: 2e-4 }, `combo ${row}`);
      }
    });
  });
});

describe('scoreIbot', () => {
  it('matches the float64 CLS + patch terms and IbotLoss per sample for every global pair', async () => {
    const e = await engine();
    const rng = new Rng(14);
    const [g, l, b, k, p, k2] = [4, 2, 3, 19, 6, 23];
    const masks = Nd.from(Array.from({ length: g * b * p }, (_, i) => (i % 7 === 0 ? 0 : rng.int(2))), [g, b, p]);
    masks.data.fill(0, 0, p); // one image with no masked patch (the count clamps at 1)
    const x = {
      studentCls: randNd([g + l, b, k], rng, { scale: 3 }),
      teacherCls: randNd([g, b, k], rng, { scale: 3 }),
      studentPatch: randNd([g, b, p, k2], rng, { scale: 3 }),
      teacherPatch: randNd([g, b, p, k2], rng, { scale: 3 }),
      masks,
      center: randNd([k], rng, { scale: 0.5 }),
      center2: randNd([k2], rng, { scale: 0.5 }),
    };
    const o = { ...temps, teacherPatchTemp: 0.07, lambda1: 0.7, lambda2: 1.3 };
    const combos = ibotCombinations(g);
    await e.scopeAsync(async () => {
      const xg = Object.fromEntries(Object.entries(x).map(([n, v]) => [n, toGpu(e, v)])) as Record<keyof typeof x, Tensor>;
      const s = await fromGpu(scoreIbot(xg, { ...o, center: xg.center, center2: xg.center2 }, combos));
      expectClose(s, ibotScoresRef(x, o, combos), { rtol: 2e-4, atol: 2e-4 }, 'scores');
      const loss = new IbotLoss(e, {
        outDim: k, patchOutDim: k2, nLocal: l, epochs: 1, teacherTemp: 0.04, warmupTeacherTemp: 0.04,
        teacherPatchTemp: 0.07, warmupTeacherPatchTemp: 0.07, studentTemp: 0.1, lambda1: 0.7, lambda2: 1.3,
      });
      await setCenter(loss.center, x.center);
      await setCenter(loss.center2, x.center2);
      const locals = reshape(slice(xg.studentCls, 0, g, g + l), [l * b, k]);
      for (let c = 0; c < combos.length; c++) {
        const pick = (t: Tensor) => concat(combos[c].map((v) => viewOf(t, v)), 0);
        const terms = loss.forward(
          { cls: pick(xg.studentCls), patch: pick(xg.studentPatch) },
          { cls: pick(xg.teacherCls), patch: pick(xg.teacherPatch) },
          locals,
          pick(xg.masks),
          0,
          { perSample: true },
        );
        expectClose(column(s, c), await fromGpu(terms.loss), { rtol: 2e-4, atol: 2e-4 }, `pair ${combos[c]}`);
      }
    });
  });
});

/** Brute-force argmax/argmin with ties to the lowest index. */
function selectRef(s: Nd, mode: 'hardest' | 'easiest'): { choice: number[]; score: number[] } {
  const [b, c] = s.shape;
  const choice: number[] = [];
  const score: number[] = [];
  for (let i = 0; i < b; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) {
      const [x, y] = [s.data[i * c + j], s.data[i * c + best]];
      if (mode === 'hardest' ? x > y : x < y) best = j;
    }
    choice.push(best);
    score.push(s.data[i * c + best]);
  }
  return { choice, score };
}

describe('selectCombination', () => {
  it('picks argmax / argmin per row with ties to the lowest index', async () => {
    const e = await engine();
    const rng = new Rng(15);
    const [b, c] = [300, 7];
    // Three levels only: almost every row has ties at its max and its min.
    const s = Nd.from(Array.from({ length: b * c }, () => rng.int(3) - 1.5), [b, c]);
    await e.scopeAsync(async () => {
      for (const mode of ['hardest', 'easiest'] as const) {
        const sel = await readSelection(selectCombination(toGpu(e, s), mode));
        const ref = selectRef(s, mode);
        expect([...sel.choice]).toEqual(ref.choice);
        expect([...sel.score]).toEqual(ref.score);
      }
      // A strided scores view ([C, B] uploaded and transposed).
      const t = permute(toGpu(e, s.permute([1, 0])), [1, 0]);
      expect([...(await readSelection(selectCombination(t, 'hardest'))).choice]).toEqual(selectRef(s, 'hardest').choice);
    });
  });

  it('random draws from the Rng, reports those scores; NaN rows pick their first NaN and fail at read', async () => {
    const e = await engine();
    const s = Nd.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4]);
    await e.scopeAsync(async () => {
      const sel = await readSelection(selectCombination(toGpu(e, s), 'random', new Rng(5)));
      const r = new Rng(5);
      const want = [0, 1, 2].map(() => r.int(4));
      expect([...sel.choice]).toEqual(want);
      expect([...sel.score]).toEqual(want.map((c, i) => s.data[i * 4 + c]));
      expect(() => selectCombination(toGpu(e, s), 'random')).toThrow(/Rng/);

      const withNaN = e.tensor([1, NaN, 5, NaN, 0, 1, 2, 3], [2, 4]);
      const nan = selectCombination(withNaN, 'hardest');
      expect([...(await nan.choice.toArray())]).toEqual([1, 3]);
      await expect(readSelection(nan)).rejects.toThrow(/NaN scores for samples 0/);
    });
  });
});

describe('gatherSelected', () => {
  it('assembles rows s·B + b from the chosen combination, with column ranges and view offsets', async () => {
    const e = await engine();
    const rng = new Rng(16);
    const [v, b, rest] = [5, 9, [2, 3, 5]];
    const width = 30;
    const views = randNd([v * b, ...rest], rng);
    const combos = pairCombinations(v);
    const choice = Array.from({ length: b }, () => rng.int(combos.length));
    const ref = (x: Nd, tab: number[][], from: number, to: number, off: number) => {
      const w = x.size / x.shape[0];
      const out: number[] = [];
      for (let s = from; s < to; s++) for (let i = 0; i < b; i++) {
        const row = (tab[choice[i]][s] - off) * b + i;
        // The GPU holds f32 copies: compare with those bits exactly.
        for (const val of x.data.subarray(row * w, (row + 1) * w)) out.push(Math.fround(val));
      }
      return Nd.from(out, [(to - from) * b, ...x.shape.slice(1)]);
    };
    await e.scopeAsync(async () => {
      const ch = e.tensor(choice, [b], { dtype: 'i32' });
      const out = gatherSelected(toGpu(e, views), ch, combinationTable(e, combos));
      expectClose(await fromGpu(out), ref(views, combos, 0, 2, 0), EXACT, 'pairs');

      // DINO: globals [G·B, ...] and locals [L·B, ...] (other sizes) gathered separately.
      const [g, l] = [4, 3];
      const dino = dinoCombinations(g, l, 2);
      const dch = Array.from({ length: b }, () => rng.int(dino.length));
      choice.splice(0, b, ...dch);
      const globals = randNd([g * b, width], rng);
      const localViews = randNd([l * b, 7], rng);
      const dt = combinationTable(e, dino);
      const dc = e.tensor(dch, [b], { dtype: 'i32' });
      const og = gatherSelected(toGpu(e, globals), dc, dt, { columns: [0, 2] });
      const ol = gatherSelected(toGpu(e, localViews), dc, dt, { columns: [2, 4], viewOffset: g });
      expectClose(await fromGpu(og), ref(globals, dino, 0, 2, 0), EXACT, 'globals');
      expectClose(await fromGpu(ol), ref(localViews, dino, 2, 4, g), EXACT, 'locals');

      // i32 data moves bit-exactly; a strided (sliced) source works.
      const ints = e.tensor(Array.from({ length: g * b * 2 }, (_, i) => i * 7 - 100000), [g * b, 2], { dtype: 'i32' });
      const oi = await gatherSelected(slice(ints, 1, 1, 2), dc, dt, { columns: [1, 2] }).toArray();
      expect([...oi]).toEqual(dch.map((c, i) => (dino[c][1] * b + i) * 14 + 7 - 100000));

      expect(() => gatherSelected(toGpu(e, globals), dc, dt, { columns: [2, 5] })).toThrow(/columns \[2, 5\)/);
      expect(() => gatherSelected(toGpu(e, randNd([7, 2], rng)), dc, dt)).toThrow(/\[7, 2\].*B = 9/);
    });
  });
});

describe('errors', () => {
  it('scorers name the bad shapes', async () => {
    const e = await engine();
    await e.scopeAsync(async () => {
      const p = e.zeros([3, 2, 4]);
      expect(() => scoreSimSiam(p, e.zeros([3, 2, 5]), pairCombinations(3))).toThrow(/\[3, 2, 4\].*\[3, 2, 5\]/);
      expect(() => scoreSimClr(e.zeros([6, 4]), pairCombinations(3))).toThrow(/\[V, B, D\]/);
      expect(() => scoreDino(e.zeros([4, 2, 8]), e.zeros([2, 2, 7]), e.zeros([8]), temps, [[0, 1]])).toThrow(/\[4, 2, 8\].*\[2, 2, 7\]/);
    });
  });
});
