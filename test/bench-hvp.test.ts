// The HVP bench cases: a tiny pair-scoring case and a tiny HVP-step case through the harness give
// records with the fields they promise (loop_ratio = loop_ms / ours_ms; the step's phase fractions,
// memory ratio and random-step baseline), and the per-pair loops and tfjs formulations the scoring
// cases time compute the same scores as the fused kernels (tested against float64 references in
// the select tests), so each ratio compares the same work. Whichever clock times a case (timestamps,
// or wall time when they are missing or invalid), records keep positive figures positive, so the
// assertions hold either way.

import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, type Engine, type Tensor } from '../engine/index.js';
import { combinationTable, dinoCombinations, pairCombinations, scoreDino, scoreSimClr, scoreSimSiam } from '../hvp/select/index.js';
import { runCases } from '../bench/main.js';
import { createTfjsPeer, type TfjsPeer } from '../bench/peers/tfjs.js';
import {
  dinoLoop, dinoLossFor, dinoScoreCase, simclrLoop, simsiamLoop, simsiamScoreCase, STUDENT_TEMP, TEACHER_TEMP, TEMPERATURE,
} from '../bench/cases/scoring.js';
import { dinoWeights, simclrConstants, simclrIndices, tfjsDino, tfjsSimClr, tfjsSimSiam } from '../bench/cases/scoring-tfjs.js';
import { hvpStepCase, type StepNet } from '../bench/cases/hvp-step.js';
import { engine } from './helpers.js';

let e: Engine;
let tfjs: TfjsPeer;

beforeAll(async () => {
  e = await engine();
  tfjs = await createTfjsPeer(e.backend.gpu);
});

/** Records round to 3 decimals. */
function expectRel(a: number, b: number, tol = 0.02): void {
  expect(Math.abs(a - b), `${a} vs ${b}`).toBeLessThanOrEqual(tol * Math.abs(b) + 0.002);
}

async function expectSame(a: Tensor | { data(): Promise<ArrayLike<number>> }, fused: Tensor, what: string): Promise<void> {
  const got = 'toArray' in a ? await a.toArray() : await a.data();
  const want = await fused.toArray();
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${what} [${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(2e-4 * Math.max(1, Math.abs(want[i])));
}

describe('bench HVP cases through the harness', () => {
  it('pair scoring: ours, the tfjs peer and the per-pair loop, loop_ratio = loop_ms / ours_ms', async () => {
    const c = simsiamScoreCase({ views: 3, batch: 5, dim: 7, quick: true });
    const [r] = await runCases(e, tfjs, [c], { reps: 3, warmup: 1 });
    expect([r.name, r.shape, r.peer]).toEqual(['score simsiam', 'V=3 B=5 D=7 (3 pairs)', 'tfjs-webgpu']);
    for (const k of ['ours_ms', 'peer_ms', 'loop_ms', 'gbps'] as const) expect(r[k]).toBeGreaterThan(0);
    expectRel(r.loop_ratio as number, (r.loop_ms as number) / r.ours_ms);
    expectRel(r.ratio!, r.peer_ms! / r.ours_ms);
  });

  it('HVP step: step time, random-step baseline, phase fractions and memory ratio', async () => {
    const net: StepNet = { label: 'test', arch: 'resnet18', widths: [4, 4, 4, 4], size: 12, channels: 1, batch: 4, dim: 16, predDim: 8 };
    const [r] = await runCases(e, null, [hvpStepCase(net, 3, 6, true)], { reps: 1, warmup: 0 });
    expect([r.name, r.shape]).toEqual(['hvp step test', 'V=3, select at 6 px, batch 4, 1x12x12']);
    expect(r.timing).toBe('wall');
    for (const k of ['ours_ms', 'random_ms', 'peak_mib', 'score_ms', 'images_per_s'] as const) expect(r[k]).toBeGreaterThan(0);
    const fracs = ['frac_views', 'frac_selection_forward', 'frac_select', 'frac_train'].map((k) => r[k] as number);
    for (const f of fracs) expect(f).toBeGreaterThan(0);
    expectRel(fracs.reduce((a, b) => a + b, 0), 1);
    expectRel(r.step_ratio as number, r.ours_ms / (r.random_ms as number), 0.02);
    expectRel(r.random_ratio as number, (r.random_ms as number) / r.ours_ms);
    expectRel(r.frac_scoring as number, (r.score_ms as number) / r.ours_ms);
    // Three candidate views and their activations can only add memory to the two-view step.
    expect(r.peak_ratio).toBeGreaterThan(1);
  });
});

describe('what the scoring cases time computes the fused scores', () => {
  const rng = new Rng(21);
  const up = (t: Tensor) => t.toArray().then((d) => tfjs.tf.tensor(Array.from(d), [...t.shape]));

  it('SimSiam: loop and tfjs at V=4, B=6, D=10', async () => {
    const rows = pairCombinations(4);
    const [p, z] = [0, 1].map(() => e.randn([4, 6, 10], rng));
    const fused = scoreSimSiam(p, z, rows);
    await expectSame(e.noGrad(() => simsiamLoop(p, z, rows)), fused, 'simsiam loop');
    const [tp, tz] = await Promise.all([up(p), up(z)]);
    const [i, j] = [0, 1].map((k) => tfjs.tf.tensor1d(rows.map((r) => r[k]), 'int32'));
    await expectSame(tfjsSimSiam(tfjs.tf, tp, tz, i, j), fused, 'simsiam tfjs');
  });

  it('SimCLR: loop and tfjs at V=3, B=5, D=8', async () => {
    const rows = pairCombinations(3);
    const z = e.randn([3, 5, 8], rng);
    const fused = scoreSimClr(z, rows, TEMPERATURE);
    await expectSame(e.noGrad(() => simclrLoop(z, rows, TEMPERATURE)), fused, 'simclr loop');
    const c = simclrConstants(tfjs.tf, 3, 5);
    await expectSame(tfjsSimClr(tfjs.tf, await up(z), simclrIndices(tfjs.tf, rows), c, TEMPERATURE), fused, 'simclr tfjs');
  });

  it('DINO: loop and tfjs at G=4, L=3 (2 used), B=3, K=20', async () => {
    const rows = dinoCombinations(4, 3, 2);
    const student = e.randn([7, 3, 20], rng);
    const teacher = e.randn([4, 3, 20], rng);
    const center = e.randn([20], rng, 0.1);
    const fused = scoreDino(student, teacher, center, { teacherTemp: TEACHER_TEMP, studentTemp: STUDENT_TEMP }, combinationTable(e, rows));
    await expectSame(e.noGrad(() => dinoLoop(dinoLossFor(e, 2, center), student, teacher, rows)), fused, 'dino loop');
    const [ts, tt, tc] = await Promise.all([up(student), up(teacher), up(center)]);
    const y = tfjsDino(tfjs.tf, ts, tt, tc, dinoWeights(tfjs.tf, rows, 4, 7), { teacher: TEACHER_TEMP, student: STUDENT_TEMP });
    await expectSame(y, fused, 'dino tfjs');
  });

  it('runs a DINO case with a limit through the harness', async () => {
    const [r] = await runCases(e, null, [dinoScoreCase({ globals: 2, locals: 3, nLocal: 1, batch: 2, k: 16, limit: 2, quick: true })], { reps: 1, warmup: 0 });
    expect(r.shape).toBe('G=2 L=3 (1 used) B=2 K=16 (2 of 3 combos)');
    expectRel(r.loop_ratio as number, (r.loop_ms as number) / r.ours_ms);
  });
});
