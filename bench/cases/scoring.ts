// HVP pair scoring: our one-dispatch scorers (hvp/select) against the reference implementation's
// structure, a loop of per-pair loss dispatches (hvp/losses' per-sample losses, stacked to [B, C];
// `loop_ms`, `loop_ratio` = loop / fused), and against the same math vectorised with tfjs ops (the
// peer). Inputs are head outputs already stacked view-major: the cost is the scoring alone.

import { Rng, ops, type Engine, type Tensor } from '../../engine/index.js';
import { DinoLoss, ntXentLoss, simsiamLoss } from '../../hvp/losses/index.js';
import { combinationTable, dinoCombinations, drawLimit, pairCombinations, scoreDino, scoreSimClr, scoreSimSiam } from '../../hvp/select/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { timeOurs, timeTfjs, TFJS } from './common.js';
import { dinoWeights, simclrConstants, simclrIndices, tfjsDino, tfjsSimClr, tfjsSimSiam } from './scoring-tfjs.js';

export const TEMPERATURE = 0.1;
export const TEACHER_TEMP = 0.04;
export const STUDENT_TEMP = 0.1;
/** Each side takes up to a few seconds on lavapipe at the largest shapes: one warm-up, two timed runs. */
const REPS = { warmup: 1, reps: 2 };

/** View v of a view-major [V, B, D] stack, as a [B, D] view. */
function view(x: Tensor, v: number): Tensor {
  return x.slice(0, v, v + 1).reshape(x.shape[1], x.shape[2]);
}

/** The reference's structure for SimSiam: one per-sample simsiamLoss per pair, stacked to [B, C]. */
export function simsiamLoop(p: Tensor, z: Tensor, rows: number[][]): Tensor {
  return ops.stack(rows.map(([i, j]) => simsiamLoss(view(p, i), view(p, j), view(z, i), view(z, j), { perSample: true })), 1);
}

/** The same for SimCLR: one per-sample ntXentLoss per pair. */
export function simclrLoop(z: Tensor, rows: number[][], temperature: number): Tensor {
  return ops.stack(rows.map(([i, j]) => ntXentLoss(view(z, i), view(z, j), { temperature, perSample: true })), 1);
}

/** The same for DINO: one per-sample DinoLoss (2 globals + the combination's locals) per combination. */
export function dinoLoop(loss: DinoLoss, student: Tensor, teacher: Tensor, rows: number[][]): Tensor {
  return ops.stack(
    rows.map((r) => {
      const st = ops.concat(r.map((v) => view(student, v)), 0);
      const te = ops.concat(r.slice(0, 2).map((v) => view(teacher, v)), 0);
      return loss.forward(st, te, 0, { perSample: true });
    }),
    1,
  );
}

/** Time the fused scorer and the per-pair loop on the same inputs; free them afterwards. */
async function fusedAndLoop(ctx: BenchContext, inputs: Tensor[], fused: () => Tensor, loop: () => Tensor) {
  const { engine } = ctx;
  const t = await timeOurs(ctx, () => [engine.noGrad(fused)]);
  const loopT = await timeOurs(ctx, () => [engine.noGrad(loop)]);
  inputs.forEach((x) => x.dispose());
  return { ...t, baselines: { loop: loopT } };
}

export interface PairScoreShape {
  views: number;
  batch: number;
  dim: number;
  quick: boolean;
}

export function simsiamScoreCase({ views: v, batch: b, dim: d, quick }: PairScoreShape): BenchCase {
  const rows = pairCombinations(v);
  const make = (engine: Engine) => {
    const rng = new Rng(5);
    return [engine.randn([v, b, d], rng), engine.randn([v, b, d], rng), combinationTable(engine, rows)];
  };
  return {
    name: 'score simsiam',
    shape: `V=${v} B=${b} D=${d} (${rows.length} pairs)`,
    quick,
    bytes: 2 * v * b * d * 4,
    reps: REPS,
    ours: async (ctx) => {
      const [p, z, table] = make(ctx.engine);
      return fusedAndLoop(
        ctx,
        [p, z, table],
        () => scoreSimSiam(p, z, table),
        () => simsiamLoop(p, z, rows),
      );
    },
    peer: {
      name: TFJS,
      run: async (ctx) => {
        const tf = ctx.tfjs!.tf;
        const [p, z] = [tf.randomNormal([v, b, d]), tf.randomNormal([v, b, d])];
        const [i, j] = [0, 1].map((k) => tf.tensor1d(rows.map((r) => r[k]), 'int32'));
        const t = await timeTfjs(ctx, () => [tfjsSimSiam(tf, p, z, i, j)]);
        [p, z, i, j].forEach((x) => x.dispose());
        return t;
      },
    },
  };
}

export function simclrScoreCase({ views: v, batch: b, dim: d, quick }: PairScoreShape): BenchCase {
  const rows = pairCombinations(v);
  return {
    name: 'score simclr',
    shape: `V=${v} B=${b} D=${d} (${rows.length} pairs)`,
    quick,
    // The Gram matrix of all V·B rows dominates the fused form.
    flops: 2 * (v * b) ** 2 * d,
    reps: REPS,
    ours: async (ctx) => {
      const z = ctx.engine.randn([v, b, d], new Rng(6));
      const table = combinationTable(ctx.engine, rows);
      return fusedAndLoop(
        ctx,
        [z, table],
        () => scoreSimClr(z, table, TEMPERATURE),
        () => simclrLoop(z, rows, TEMPERATURE),
      );
    },
    peer: {
      name: TFJS,
      run: async (ctx) => {
        const tf = ctx.tfjs!.tf;
        const z = tf.randomNormal([v, b, d]);
        const idx = simclrIndices(tf, rows);
        const consts = simclrConstants(tf, v, b);
        const t = await timeTfjs(ctx, () => [tfjsSimClr(tf, z, idx, consts, TEMPERATURE)]);
        [z, ...idx, consts.selfMask, consts.eye].forEach((x) => x.dispose());
        return t;
      },
    },
  };
}

export interface DinoScoreShape {
  globals: number;
  locals: number;
  /** Locals per combination. */
  nLocal: number;
  batch: number;
  k: number;
  /** Score only this many combinations (the reference's `limit 64`); 0 = all. */
  limit: number;
  quick: boolean;
}

/** A DinoLoss for combinations of 2 globals + nLocal locals, at `center` [K]. */
export function dinoLossFor(engine: Engine, nLocal: number, center: Tensor): DinoLoss {
  const k = center.size;
  const loss = new DinoLoss(engine, { outDim: k, ncrops: 2 + nLocal, nGlobal: 2, epochs: 1, teacherTemp: TEACHER_TEMP, studentTemp: STUDENT_TEMP });
  ops.copyInto(loss.center, center.reshape(1, k));
  return loss;
}

export function dinoScoreCase(s: DinoScoreShape): BenchCase {
  const { globals: g, batch: b, k } = s;
  const vs = g + s.locals;
  const all = dinoCombinations(g, s.locals, s.nLocal);
  const rows = s.limit > 0 ? drawLimit(all.length, s.limit, new Rng(7)).map((r) => all[r]) : all;
  return {
    name: 'score dino',
    shape: `G=${g} L=${s.locals} (${s.nLocal} used) B=${b} K=${k} (${rows.length}${s.limit ? ` of ${all.length}` : ''} combos)`,
    quick: s.quick,
    bytes: (vs + g) * b * k * 4,
    reps: REPS,
    ours: async (ctx) => {
      const { engine } = ctx;
      const rng = new Rng(8);
      const student = engine.randn([vs, b, k], rng);
      const teacher = engine.randn([g, b, k], rng);
      const center = engine.randn([k], rng, 0.1);
      const table = combinationTable(engine, rows);
      const loss = dinoLossFor(engine, s.nLocal, center);
      const loop = () => dinoLoop(loss, student, teacher, rows);
      const fused = () => scoreDino(student, teacher, center, { teacherTemp: TEACHER_TEMP, studentTemp: STUDENT_TEMP }, table);
      return fusedAndLoop(ctx, [student, teacher, center, table, loss.center], fused, loop);
    },
    peer: {
      name: TFJS,
      run: async (ctx) => {
        const tf = ctx.tfjs!.tf;
        const [student, teacher] = [tf.randomNormal([vs, b, k]), tf.randomNormal([g, b, k])];
        const center = tf.mul(tf.randomNormal([k]), 0.1);
        const w = dinoWeights(tf, rows, g, vs);
        const t = await timeTfjs(ctx, () => [tfjsDino(tf, student, teacher, center, w, { teacher: TEACHER_TEMP, student: STUDENT_TEMP })]);
        [student, teacher, center, w].forEach((x) => x.dispose());
        return t;
      },
    },
  };
}

// V sweeps at a mid-size head, then larger batches and widths; DINO at K = 1024 (the small preset's)
// and at ImageNet's K = 65536. Shapes are cut so that the per-pair loop, the slowest side, stays at a
// few seconds per run on lavapipe (DINO's loop costs ~0.2-2 s per combination there).
export const scoringCases: BenchCase[] = [
  ...[2, 4, 8, 16].map((v) => simsiamScoreCase({ views: v, batch: 128, dim: 512, quick: v === 8 })),
  { ...simsiamScoreCase({ views: 4, batch: 512, dim: 2048, quick: false }), extended: true },
  simsiamScoreCase({ views: 8, batch: 64, dim: 128, quick: false }),
  ...[2, 4, 8, 16].map((v) => simclrScoreCase({ views: v, batch: 128, dim: 128, quick: v === 8 })),
  simclrScoreCase({ views: 4, batch: 512, dim: 128, quick: false }),
  simclrScoreCase({ views: 4, batch: 64, dim: 2048, quick: false }),
  dinoScoreCase({ globals: 4, locals: 0, nLocal: 0, batch: 32, k: 1024, limit: 0, quick: false }),
  dinoScoreCase({ globals: 4, locals: 4, nLocal: 2, batch: 32, k: 1024, limit: 0, quick: true }),
  dinoScoreCase({ globals: 4, locals: 12, nLocal: 2, batch: 32, k: 1024, limit: 32, quick: false }),
  // Its per-combination loop takes ~30 s a repetition on lavapipe.
  { ...dinoScoreCase({ globals: 4, locals: 0, nLocal: 0, batch: 8, k: 65536, limit: 0, quick: false }), extended: true },
];
