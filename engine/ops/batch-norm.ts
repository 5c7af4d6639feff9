// Batch normalisation (F.batch_norm) over axis 1 of an [N, C, ...] input, with PyTorch's semantics:
// training mode normalises with the batch mean and biased variance and moves the running statistics
// (unbiased variance, momentum) in place, off the tape; eval mode uses the running statistics.
// Kernels in shaders/batch_norm.wgsl: per-channel statistics, an elementwise normalise, and a
// per-channel reduction plus elementwise input gradient for the backward.

import type { Tensor } from '../tensor.js';
import type { Engine } from '../engine.js';
import { record } from '../autograd.js';
import { fmt, numel } from '../shape.js';
import { grid1d } from '../runtime.js';
import { checkInputs } from './map.js';
import { add, rsqrt } from './elementwise.js';
import { contiguous, slice } from './view.js';
import { bindings, checkParam } from './norm-params.js';
import source from '../../shaders/batch_norm.wgsl';

export interface BatchNormOptions {
  /** Normalise with the batch's statistics (true) or the running ones (false). */
  training: boolean;
  momentum?: number;
  eps?: number;
  /** In training mode, move the running statistics (when given). False leaves them untouched. */
  updateStats?: boolean;
}

const WG = 256;
/** Mode flags off; each launch turns on its own. The template names every flag and B_* define in all variants. */
const MODES = { STATS: false, REDUCE: false, BACKWARD: false, TRAIN: false, UPDATE: false };

interface Dims {
  n: number;
  c: number;
  s: number;
}

/** Statistics the normalisation uses: per-channel mean (possibly a running buffer) and 1/sqrt(var + eps). */
interface Stats {
  mean: Tensor;
  rstd: Tensor;
}

type Bound = Partial<Record<'x' | 'g' | 'mean' | 'rstd' | 'w' | 'b' | 'rm' | 'rv', Tensor | null>>;

/** The shader's Params block: sizes, the element offset of every bound tensor, momentum and eps. */
function params(d: Dims, rowWidth: number, o: Bound, momentum = 0, eps = 0): Uint32Array {
  const u = new Uint32Array(14);
  const off = (t?: Tensor | null) => t?.offset ?? 0;
  u.set([d.n, d.c, d.s, rowWidth, off(o.x), off(o.g), off(o.mean), off(o.rstd), off(o.w), off(o.b), off(o.rm), off(o.rv)]);
  const f = new Float32Array(u.buffer);
  f[12] = momentum;
  f[13] = eps;
  return u;
}

/** Batch statistics of x; with running buffers, also updates them in place. */
function batchStats(engine: Engine, x: Tensor, d: Dims, eps: number, momentum: number, rm: Tensor | null, rv: Tensor | null): Stats {
  const stats = { mean: engine.empty([d.c]), rstd: engine.empty([d.c]) };
  const update = !!(rm && rv);
  const [gx, gy] = grid1d(d.c);
  engine.backend.dispatch({
    kernel: { name: 'batch_norm_stats', source, defines: { ...applyDefines(null, null, false), ...MODES, STATS: true, UPDATE: update } },
    inputs: [x.buffer],
    outputs: [stats.mean.buffer, stats.rstd.buffer, ...(update ? [rm!.buffer, rv!.buffer] : [])],
    uniforms: params(d, gx, { x, rm, rv }, momentum, eps),
    workgroups: [gx, gy],
  });
  return stats;
}

/** Eval mode: the running mean as it is, and 1/sqrt(running_var + eps). */
function runningStats(rm: Tensor, rv: Tensor, eps: number): Stats {
  const v = add(rv, eps);
  const rstd = rsqrt(v);
  v.dispose();
  return { mean: rm, rstd };
}

function applyDefines(w: Tensor | null, b: Tensor | null, backward: boolean, train = false) {
  const bind = bindings({ X: true, G: backward, MEAN: true, RSTD: true, W: w, B: b, SUMS: train, OUT: true });
  return { ...bind.defines, HAS_W: !!w, HAS_B: !!b };
}

/** The elementwise kernel: y (no g) or dx (g given; `sums` = [Σg, Σg·x̂] in training). */
function apply(name: string, x: Tensor, d: Dims, st: Stats, w: Tensor | null, b: Tensor | null, g?: Tensor, sums?: Tensor): Tensor {
  const engine = x.engine;
  const out = engine.empty(x.shape);
  const [gx, gy] = grid1d(Math.ceil(x.size / WG));
  const ins = [x, g, st.mean, st.rstd, w, b, sums].filter((t): t is Tensor => !!t);
  engine.backend.dispatch({
    kernel: { name, source, defines: { ...applyDefines(w, b, !!g, !!sums), ...MODES, BACKWARD: !!g, TRAIN: !!sums } },
    inputs: ins.map((t) => t.buffer),
    outputs: [out.buffer],
    uniforms: params(d, gx * WG, { x, g, mean: st.mean, rstd: st.rstd, w, b }),
    workgroups: [gx, gy],
  });
  return out;
}

/** Per-channel [Σg, Σg·x̂] as one [2C] tensor: dBias, then dWeight. */
function reduceGrad(x: Tensor, g: Tensor, d: Dims, st: Stats): Tensor {
  const engine = x.engine;
  const sums = engine.empty([2 * d.c]);
  const [gx, gy] = grid1d(d.c);
  engine.backend.dispatch({
    kernel: { name: 'batch_norm_backward_reduce', source, defines: { ...applyDefines(null, null, true), ...MODES, REDUCE: true } },
    inputs: [x, g, st.mean, st.rstd].map((t) => t.buffer),
    outputs: [sums.buffer],
    uniforms: params(d, gx, { x, g, mean: st.mean, rstd: st.rstd }),
    workgroups: [gx, gy],
  });
  return sums;
}

function check(x: Tensor, weight: Tensor | null, bias: Tensor | null, rm: Tensor | null, rv: Tensor | null, training: boolean): Dims {
  const op = 'batch_norm';
  checkInputs(op, [x]);
  if (x.ndim < 2 || x.dtype !== 'f32') throw new Error(`${op}: expects an f32 input [N, C, ...], got ${x}`);
  const d = { n: x.shape[0], c: x.shape[1], s: numel(x.shape.slice(2)) };
  checkParam(op, 'weight', weight, d.c, x);
  checkParam(op, 'bias', bias, d.c, x);
  checkParam(op, 'running_mean', rm, d.c, x);
  checkParam(op, 'running_var', rv, d.c, x);
  if (!rm !== !rv) throw new Error(`${op}: give both running_mean and running_var, or neither`);
  if (!training && !rm) throw new Error(`${op}: eval mode needs running_mean and running_var`);
  if (training && d.n * d.s <= 1) {
    throw new Error(`${op}: expected more than 1 value per channel when training, got input ${fmt(x.shape)}`);
  }
  return d;
}

export function batchNorm(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  opts: BatchNormOptions,
): Tensor {
  const { training, momentum = 0.1, eps = 1e-5, updateStats = true } = opts;
  const d = check(x, weight, bias, runningMean, runningVar, training);
  const engine = x.engine;
  const src = engine.noGrad(() => contiguous(x));
  const st = engine.noGrad(() =>
    training
      ? batchStats(engine, src, d, eps, momentum, updateStats ? runningMean : null, updateStats ? runningVar : null)
      : runningStats(runningMean!, runningVar!, eps),
  );
  const y = apply('batch_norm', src, d, st, weight, bias);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const out = record(y, 'batch_norm', inputs, (g) => {
    const gc = contiguous(g);
    // With fixed statistics and no affine parameters the sums are not needed at all.
    const sums = training || weight || bias ? reduceGrad(src, gc, d, st) : null;
    const dx = x.requiresGrad ? apply('batch_norm_backward', src, d, st, weight, null, gc, training ? sums! : undefined) : null;
    const grads = [dx];
    if (weight) grads.push(slice(sums!, 0, d.c, 2 * d.c));
    if (bias) grads.push(slice(sums!, 0, 0, d.c));
    return grads;
  });
  if (!out.node) {
    if (src !== x) src.dispose();
    if (st.mean !== runningMean) st.mean.dispose();
    st.rstd.dispose();
  }
  return out;
}
