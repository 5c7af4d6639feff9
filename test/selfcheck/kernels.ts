// The self-check's kernel rows: every kernel family on small, deliberately awkward shapes (sizes that
// are not multiples of the kernels' tiles), forward against the tests' float64 references and backward
// against central differences of them, on whichever kernel variants the engine was created with.

import { ops, Rng, type Engine, type Tensor } from '../../engine/index.js';
import { combinationTable, dinoCombinations, pairCombinations, scoreDino, scoreSimClr, scoreSimSiam, selectCombination } from '../../hvp/select/index.js';
import { attentionRef } from '../attention-ref.js';
import { conv2dRef, pool2dRef } from '../conv-ref.js';
import { bicubicRef } from '../interpolate-ref.js';
import { layerNormRef, softmaxRef, trainRef } from '../norm-ref.js';
import { matmulRef, reduce, sumOf, zip, type Nd } from '../ref.js';
import { dinoScoresRef, simclrScoresRef, simsiamScoresRef } from '../select-ref.js';
import { checkOp, compare, randNd, toGpu, type Compared, type Tolerance } from './measure.js';

export interface Check {
  name: string;
  tol: Tolerance;
  run: (e: Engine) => Promise<Compared>;
}

const F32: Tolerance = { rtol: 1e-4, atol: 1e-5 };
/** Sums of tens to hundreds of products: f32 rounding grows with the length of the sum. */
const SUMS: Tolerance = { rtol: 1e-4, atol: 1e-4 };
const GRAD: Tolerance = { rtol: 2e-3, atol: 2e-3 };

/** A forward row and a backward row of one op on inputs drawn from `seed`. */
function opRows(
  name: string,
  shapes: number[][],
  gpuFn: (...xs: Tensor[]) => Tensor,
  refFn: (...xs: Nd[]) => Nd,
  fwd: Tolerance = F32,
  opts: { wrt?: number[]; positive?: boolean } = {},
): Check[] {
  let memo: Promise<{ fwd: Compared; grad: Compared | null }> | null = null;
  const once = (e: Engine) => {
    memo ??= (() => {
      const rng = new Rng(shapes.flat().reduce((a, b) => a * 31 + b, 17) >>> 0);
      const inputs = shapes.map((s) => randNd(s, rng, { positive: opts.positive }));
      return checkOp(e, inputs, gpuFn, refFn, { fwd, grad: GRAD, wrt: opts.wrt });
    })();
    return memo;
  };
  return [
    { name: `${name} fwd`, tol: fwd, run: async (e) => (await once(e)).fwd },
    { name: `${name} bwd`, tol: GRAD, run: async (e) => (await once(e)).grad! },
  ];
}

const conv = (stride: number, pad: number) => (x: Tensor, w: Tensor, b?: Tensor) => ops.conv2d(x, w, b ?? null, { stride, padding: pad });

/** Scores of every combination on GPU against the reference, then the hardest choice per sample, exactly. */
function scoringRows(): Check[] {
  const rng = new Rng(23);
  const [v, b, d] = [4, 5, 24];
  const pairs = pairCombinations(v).map((c) => [...c]);
  const p = randNd([v, b, d], rng);
  const z = randNd([v, b, d], rng);
  const [g, l, k] = [2, 3, 37];
  const student = randNd([g + l, b, k], rng).map((x) => 3 * x);
  const teacher = randNd([g, b, k], rng).map((x) => 3 * x);
  const center = randNd([k], rng).map((x) => 0.5 * x);
  const dinoRows = dinoCombinations(g, l, 2).map((c) => [...c]);
  const temps = { teacherTemp: 0.04, studentTemp: 0.1 };
  const scored = (e: Engine, fn: () => Tensor) => e.scopeAsync(async () => Float64Array.from(await fn().toArray()));
  return [
    {
      name: 'score simsiam (V=4 pairs)',
      tol: F32,
      run: async (e) => compare(await scored(e, () => scoreSimSiam(toGpu(e, p), toGpu(e, z), combinationTable(e, pairs))), simsiamScoresRef(p, z, pairs).data, F32),
    },
    {
      name: 'score simclr (V=4 pairs)',
      tol: F32,
      run: async (e) => compare(await scored(e, () => scoreSimClr(toGpu(e, z), combinationTable(e, pairs), 0.1)), simclrScoresRef(z, pairs, 0.1).data, F32),
    },
    {
      name: 'score dino (2 global, 3 local)',
      tol: { rtol: 2e-4, atol: 2e-4 },
      run: async (e) =>
        compare(
          await scored(e, () => scoreDino(toGpu(e, student), toGpu(e, teacher), toGpu(e, center), temps, combinationTable(e, dinoRows))),
          dinoScoresRef(student, teacher, center, temps, dinoRows).data,
          { rtol: 2e-4, atol: 2e-4 },
        ),
    },
    {
      // Exact: the number of samples whose chosen combination differs from the reference's argmax.
      name: 'select hardest (argmax per sample)',
      tol: { rtol: 0, atol: 0.5 },
      run: async (e) => {
        const ref = simsiamScoresRef(p, z, pairs);
        const want = [...Array(b).keys()].map((s) => {
          const row = [...ref.data.subarray(s * pairs.length, (s + 1) * pairs.length)];
          return row.indexOf(Math.max(...row));
        });
        const got = await e.scopeAsync(async () => Array.from(await selectCombination(toGpu(e, ref), 'hardest').choice.toArray()));
        const wrong = got.filter((c, s) => c !== want[s]).length;
        return { maxAbs: wrong, worst: wrong / 0.5 };
      },
    },
  ];
}

export function kernelChecks(): Check[] {
  return [
    ...opRows('matmul [13,17]x[17,19]', [[13, 17], [17, 19]], (a, b) => ops.matmul(a, b), matmulRef),
    ...opRows('matmul batched [3,9,33]x[3,33,7]', [[3, 9, 33], [3, 33, 7]], (a, b) => ops.matmul(a, b), matmulRef, SUMS),
    ...opRows('conv2d 3x3 s1 p1 [2,5,9,11]', [[2, 5, 9, 11], [7, 5, 3, 3], [7]], conv(1, 1), (x, w, b) => conv2dRef(x, w, b, 1, 1), SUMS),
    ...opRows('conv2d 3x3 s2 p1 [3,7,13,13]', [[3, 7, 13, 13], [6, 7, 3, 3]], conv(2, 1), (x, w) => conv2dRef(x, w, null, 2, 1), SUMS),
    ...opRows('conv2d 1x1 [2,19,7,7]', [[2, 19, 7, 7], [17, 19, 1, 1]], conv(1, 0), (x, w) => conv2dRef(x, w, null, 1, 0), SUMS),
    ...opRows('elementwise exp(a)*b, sum over axis 1', [[5, 9, 7], [5, 9, 7]], (a, b) => ops.sum(ops.mul(ops.exp(a), b), 1), (a, b) => reduce(zip((x, y) => Math.exp(x) * y, a, b), 1, sumOf, false)),
    ...opRows('reduce max over axis 2', [[4, 6, 13]], (a) => ops.max(a, 2), (a) => reduce(a, 2, (v) => Math.max(...v), false)),
    ...opRows('softmax [6,37]', [[6, 37]], (x) => ops.softmax(x, -1), (x) => softmaxRef(x, 1)),
    ...opRows('layer_norm [5,7,48]', [[5, 7, 48], [48], [48]], (x, w, b) => ops.layerNorm(x, w, b), (x, w, b) => layerNormRef(x, w, b)),
    ...opRows('batch_norm train [4,6,5,5]', [[4, 6, 5, 5], [6], [6]], (x, w, b) => ops.batchNorm(x, w, b, null, null, { training: true, updateStats: false }), (x, w, b) => trainRef(x, w, b)),
    ...opRows('attention [2,3,17,16]', [[2, 3, 17, 16], [2, 3, 17, 16], [2, 3, 17, 16]], (q, k, v) => ops.scaledDotProductAttention(q, k, v), (q, k, v) => attentionRef(q, k, v)),
    ...opRows('max_pool2d 3x3 s2 p1 [2,3,9,11]', [[2, 3, 9, 11]], (x) => ops.maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }), (x) => pool2dRef(x, 'max', 3, 2, 1)),
    ...opRows('avg_pool2d 2x2 s2 [2,3,9,11]', [[2, 3, 9, 11]], (x) => ops.avgPool2d(x, { kernel: 2, stride: 2 }), (x) => pool2dRef(x, 'avg', 2, 2, 0)),
    ...opRows('interpolate bicubic [2,3,5,7]->[9,4]', [[2, 3, 5, 7]], (x) => ops.interpolateBicubic(x, 9, 4), (x) => bicubicRef(x, 9, 4)),
    ...scoringRows(),
  ];
}
