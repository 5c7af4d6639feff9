// Batch normalisation (F.batch_norm) over axis 1 of an [N, C, ...] input, with PyTorch's semantics:
// training mode normalises with the batch mean and biased variance and moves the running statistics
// (unbiased variance, momentum) in place, off the tape; eval mode uses the running statistics.
// Optionally fused with what follows it in a ResNet: relu(bn(x) + residual), one tape node.
// Kernels in batch_norm.wgsl: two launches forward (chunk statistics; normalise) and at most
// two backward (chunk sums of the gradient; input gradient), whatever the options.

import type { Engine, Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt, numel, sameShape } from '../shape.js';
import { checkInputs } from './map.js';
import { contiguous } from './view.js';
import { checkParam } from './norm-params.js';
import type { Defines } from '../shader.js';
import source from './batch_norm.wgsl';

export interface BatchNormOptions {
  /** Normalise with the batch's statistics (true) or the running ones (false). */
  training: boolean;
  momentum?: number;
  eps?: number;
  /** In training mode, move the running statistics (when given). False leaves them untouched. */
  updateStats?: boolean;
  /** Added after the affine step, before the ReLU: a ResNet block's `out + identity`. Shape of x. */
  residual?: Tensor | null;
  /** Apply ReLU to the result in the same kernel. */
  relu?: boolean;
  /** A 0-d i32 counter (the module's num_batches_tracked), incremented in the same launch whenever the running statistics move. */
  numBatchesTracked?: Tensor | null;
}

interface Dims {
  n: number;
  c: number;
  s: number;
}

/** How a launch cuts each channel's N·S values into workgroup chunks. */
interface Plan {
  vec4: boolean;
  wg: number;
  /** Plane length and values per channel, in loads (vec4 or f32). */
  s: number;
  m: number;
  chunk: number;
  chunks: number;
}

/** Chunks per channel at most: the second launch's first invocation merges that many partial results in a loop. */
const MAX_CHUNKS = 256;

function plan(engine: Engine, d: Dims, vec4: boolean): Plan {
  const s = vec4 ? d.s / 4 : d.s;
  const m = d.n * s;
  const wg = m >= 256 ? 256 : m >= 128 ? 128 : 64;
  // A CPU adapter runs a workgroup's invocations in turn on one core, and every barrier swaps them
  // all: few fat chunks (8 loads an invocation), just enough of them for every core. A GPU wants
  // thousands of invocations in flight: thin chunks, down to one load an invocation.
  const cpu = engine.backend.isCpuAdapter;
  const loads = cpu ? 8 : 2;
  const wanted = cpu ? 64 : 1024;
  let chunks = Math.ceil(m / (wg * loads));
  if (d.c * chunks < wanted) chunks = Math.min(Math.ceil(m / wg), Math.ceil(wanted / d.c));
  chunks = Math.min(Math.max(chunks, 1), MAX_CHUNKS);
  const chunk = Math.max(Math.ceil(m / chunks), 1);
  return { vec4, wg, s, m, chunk, chunks: Math.max(Math.ceil(m / chunk), 1) };
}

const FLAGS = ['STATS', 'APPLY', 'GRAD', 'GRAD_REDUCE', 'GRAD_APPLY', 'TRAIN', 'UPDATE', 'RELU', 'SERIAL'] as const;
const BUFFERS = ['X', 'R', 'G', 'Y', 'PART', 'STATS', 'W', 'B', 'RM', 'RV', 'OUT', 'DRES', 'DW', 'DB', 'NBT'] as const;
type Flags = Partial<Record<(typeof FLAGS)[number], boolean>>;
type Slot = readonly [(typeof BUFFERS)[number], Tensor | null | undefined];

/** Element offsets of the bound tensors, in the shader's units (loads for the big ones). */
function uniforms(d: Dims, p: Plan, t: Partial<Record<'x' | 'r' | 'g' | 'y' | 'w' | 'b' | 'rm' | 'rv' | 'nbt', Tensor | null>>, momentum = 0, eps = 0) {
  const u = new Uint32Array(16);
  const big = (v?: Tensor | null) => (v ? v.offset / (p.vec4 ? 4 : 1) : 0);
  const small = (v?: Tensor | null) => v?.offset ?? 0;
  u.set([d.c, p.s, p.m, p.chunk, p.chunks, big(t.x), big(t.r), big(t.g), big(t.y)]);
  u.set([small(t.w), small(t.b), small(t.rm), small(t.rv), small(t.nbt)], 9);
  const f = new Float32Array(u.buffer);
  f[14] = momentum;
  f[15] = eps;
  return u;
}

/** One launch over the [chunks, C] grid; absent slots get no binding and the later ones move up. */
function launch(engine: Engine, name: string, d: Dims, p: Plan, flags: Flags, ins: Slot[], outs: Slot[], u: Uint32Array): void {
  const defines: Defines = { VTYPE: p.vec4 ? 'vec4<f32>' : 'f32', LANES: p.vec4 ? 4 : 1, VEC4: p.vec4, WG: p.wg };
  for (const f of FLAGS) defines[f] = !!flags[f];
  for (const b of BUFFERS) Object.assign(defines, { [`B_${b}`]: 0, [`HAS_${b}`]: false, [`ACCESS_${b}`]: 'read' });
  let next = 1;
  const bind = (slots: Slot[], access: string) =>
    slots.flatMap(([b, t]) => {
      if (!t) return [];
      Object.assign(defines, { [`B_${b}`]: next++, [`HAS_${b}`]: true, [`ACCESS_${b}`]: access });
      return [t.buffer];
    });
  const inputs = bind(ins, 'read');
  const outputs = bind(outs, 'read_write');
  engine.backend.dispatch({ kernel: { name, source, defines }, inputs, outputs, uniforms: u, workgroups: [p.chunks, d.c] });
}

const aligned = (...ts: (Tensor | null | undefined)[]) => ts.every((t) => !t || t.offset % 4 === 0);

function check(x: Tensor, weight: Tensor | null, bias: Tensor | null, rm: Tensor | null, rv: Tensor | null, opts: BatchNormOptions): Dims {
  const op = 'batch_norm';
  checkInputs(op, [x, ...(opts.residual ? [opts.residual] : [])]);
  if (x.ndim < 2 || x.dtype !== 'f32') throw new Error(`${op}: expects an f32 input [N, C, ...], got ${x}`);
  const d = { n: x.shape[0], c: x.shape[1], s: numel(x.shape.slice(2)) };
  checkParam(op, 'weight', weight, d.c, x);
  checkParam(op, 'bias', bias, d.c, x);
  checkParam(op, 'running_mean', rm, d.c, x);
  checkParam(op, 'running_var', rv, d.c, x);
  if (!rm !== !rv) throw new Error(`${op}: give both running_mean and running_var, or neither`);
  if (!opts.training && !rm) throw new Error(`${op}: eval mode needs running_mean and running_var`);
  if (opts.training && d.n * d.s <= 1) {
    throw new Error(`${op}: expected more than 1 value per channel when training, got input ${fmt(x.shape)}`);
  }
  const r = opts.residual;
  if (r && (!sameShape(r.shape, x.shape) || r.dtype !== 'f32')) {
    throw new Error(`${op}: residual ${r} must be f32 and of the input's shape ${fmt(x.shape)}`);
  }
  const nbt = opts.numBatchesTracked;
  if (nbt && (nbt.dtype !== 'i32' || nbt.size !== 1 || nbt.engine !== x.engine)) {
    throw new Error(`${op}: numBatchesTracked must be a one-element i32 tensor on the input's device, got ${nbt}`);
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
  const { training, momentum = 0.1, eps = 1e-5, updateStats = true, relu = false } = opts;
  const d = check(x, weight, bias, runningMean, runningVar, opts);
  const engine = x.engine;
  const residual = opts.residual ?? null;
  const [src, res] = engine.noGrad(() => [contiguous(x), residual && contiguous(residual)]);
  const update = training && updateStats && !!runningMean;
  const running = update || !training;
  const nbt = update ? (opts.numBatchesTracked ?? null) : null;
  // (mean, rstd) per channel as the forward used them: the backward needs no running buffer.
  const stats = engine.empty([2 * d.c]);
  const y = engine.empty(x.shape);
  const p = plan(engine, d, d.s % 4 === 0 && aligned(src, res));
  const serial = engine.backend.isCpuAdapter;
  let part: Tensor | null = null;
  if (training) {
    part = engine.empty([d.c * p.chunks * 4]);
    launch(engine, 'batch_norm_stats', d, p, { STATS: true, SERIAL: serial }, [['X', src]], [['PART', part]], uniforms(d, p, { x: src }));
  }
  const rIn = running && !training;
  const ins: Slot[] = [['X', src], ['PART', part], ['W', weight], ['B', bias], ['R', res], ['RM', rIn ? runningMean : null], ['RV', rIn ? runningVar : null]];
  const outs: Slot[] = [['STATS', stats], ['RM', update ? runningMean : null], ['RV', update ? runningVar : null], ['OUT', y], ['NBT', nbt]];
  const u = uniforms(d, p, { x: src, r: res, w: weight, b: bias, rm: runningMean, rv: runningVar, nbt }, momentum, eps);
  launch(engine, 'batch_norm', d, p, { APPLY: true, TRAIN: training, UPDATE: update, RELU: relu }, ins, outs, u);
  part?.dispose();

  const inputs = [x, weight, bias, residual].filter((t): t is Tensor => !!t);
  const op = relu ? (residual ? 'batch_norm_add_relu' : 'batch_norm_relu') : residual ? 'batch_norm_add' : 'batch_norm';
  const out = record(y, op, inputs, (g) => {
    const gr = backward(engine, g, d, { src, stats, y, weight, bias, training, relu, needDx: x.requiresGrad, needRes: !!residual?.requiresGrad });
    return [gr.dx, ...(weight ? [gr.dw] : []), ...(bias ? [gr.db] : []), ...(residual ? [gr.dres] : [])];
  });
  if (!out.node) {
    if (src !== x) src.dispose();
    if (res && res !== residual) res.dispose();
    stats.dispose();
  }
  return out;
}

interface Saved {
  src: Tensor;
  stats: Tensor;
  y: Tensor;
  weight: Tensor | null;
  bias: Tensor | null;
  training: boolean;
  relu: boolean;
  needDx: boolean;
  needRes: boolean;
}

type Grads = Record<'dx' | 'dw' | 'db' | 'dres', Tensor | null>;

function backward(engine: Engine, g: Tensor, d: Dims, sv: Saved): Grads {
  const gc = contiguous(g);
  const dw = sv.weight?.requiresGrad ? engine.empty([d.c]) : null;
  const db = sv.bias?.requiresGrad ? engine.empty([d.c]) : null;
  const dx = sv.needDx ? engine.empty(sv.src.shape) : null;
  // Without a ReLU the residual's gradient is the output's, as for an add.
  const dres = sv.needRes ? (sv.relu ? engine.empty(sv.src.shape) : gc) : null;
  const y = sv.relu ? sv.y : null;
  const p = plan(engine, d, d.s % 4 === 0 && aligned(sv.src, gc));
  const u = uniforms(d, p, { x: sv.src, g: gc, y });
  const common: Slot[] = [['X', sv.src], ['G', gc], ['Y', y], ['STATS', sv.stats]];
  const flags = { GRAD: true, RELU: sv.relu, TRAIN: sv.training };
  let part: Tensor | null = null;
  if ((sv.training && dx) || dw || db) {
    part = engine.empty([d.c * p.chunks * 4]);
    launch(engine, 'batch_norm_backward_reduce', d, p, { ...flags, GRAD_REDUCE: true, SERIAL: engine.backend.isCpuAdapter }, common, [['PART', part]], u);
  }
  const outs: Slot[] = [['OUT', dx], ['DRES', dres === gc ? null : dres], ['DW', dw], ['DB', db]];
  if (outs.some(([, t]) => t)) {
    launch(engine, 'batch_norm_backward', d, p, { ...flags, GRAD_APPLY: true }, [...common, ['PART', part], ['W', sv.weight]], outs, u);
  }
  part?.dispose();
  if (gc !== g && gc !== dres) gc.dispose();
  return { dx, dw, db, dres };
}
