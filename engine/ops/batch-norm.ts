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
import { defineKernel, hasFlag, type BindingSpec, type Bindings, type KernelDef } from '../kernel.js';
import source from './batch_norm.wgsl';
import { syncGradientSums, syncStatistics, type BatchNormSync } from './batch-norm-sync.js';

/** Options of the batchNorm op: training mode, momentum, epsilon, and a fused residual and ReLU. */
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
  /**
   * In training mode, normalise with the statistics of the batch over every replica, and sum the
   * backward's per-channel terms over them (synchronised batch norm, see batch-norm-sync.ts).
   */
  sync?: BatchNormSync | null;
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
  const cpu = engine.backend.isCpuAdapter;
  // A CPU adapter runs a workgroup's invocations in turn on one core, a SIMD vector at a time, and
  // every barrier swaps them all; locating an invocation's first value takes integer divisions that
  // run one lane at a time. So there: small workgroups (four 8-lane vectors) of fat invocations (64
  // loads each), just enough workgroups for every core. On lavapipe this ran the demo network's
  // layers' forward + backward 1.7-3× faster than 256 invocations of 8 loads. A GPU wants thousands of
  // invocations in flight: thin chunks, down to one load an invocation.
  const wg = cpu ? 32 : m >= 256 ? 256 : m >= 128 ? 128 : 64;
  const loads = cpu ? 64 : 2;
  const wanted = cpu ? 64 : 1024;
  let chunks = Math.ceil(m / (wg * loads));
  if (d.c * chunks < wanted) chunks = Math.min(Math.ceil(m / wg), Math.ceil(wanted / d.c));
  chunks = Math.min(Math.max(chunks, 1), MAX_CHUNKS);
  const chunk = Math.max(Math.ceil(m / chunks), 1);
  return { vec4, wg, s, m, chunk, chunks: Math.max(Math.ceil(m / chunk), 1) };
}

const FLAGS = ['STATS', 'APPLY', 'GRAD', 'GRAD_REDUCE', 'GRAD_APPLY', 'TRAIN', 'UPDATE', 'RELU', 'SERIAL'] as const;
type Flags = Partial<Record<(typeof FLAGS)[number], boolean>>;

const UNIFORMS = {
  c: 'u32', s: 'u32', m: 'u32', chunk: 'u32', chunks: 'u32',
  momentum: 'f32', eps: 'f32',
} as const;

/** A big tensor's binding (V: vec4 or f32 per launch) and the optional bindings. */
const V: BindingSpec = { type: 'V', dtype: 'f32' };
const opt = (b: BindingSpec | 'f32' | 'i32' | 'vec4<f32>'): BindingSpec =>
  typeof b === 'string' ? { type: b, dtype: b === 'i32' ? 'i32' : 'f32', optional: true } : { ...b, optional: true };

/** The four launches' bindings. The running statistics are read-write: eval mode only reads them. */
const LAUNCHES = {
  batch_norm_stats: { inputs: { x: V }, outputs: { part: 'vec4<f32>' } },
  batch_norm: {
    inputs: { x: V, part: opt('vec4<f32>'), w: opt('f32'), b: opt('f32'), r: opt(V) },
    outputs: { stats: 'f32', running_mean: opt('f32'), running_var: opt('f32'), out: V, nbt: opt('i32') },
  },
  batch_norm_backward_reduce: { inputs: { x: V, g: V, y: opt(V), stats: 'f32' }, outputs: { part: 'vec4<f32>' } },
  batch_norm_backward: {
    inputs: { x: V, g: V, y: opt(V), stats: 'f32', part: opt('vec4<f32>'), w: opt('f32') },
    outputs: { out: opt(V), dres: opt(V), dw: opt('f32'), db: opt('f32') },
  },
} satisfies Record<string, { inputs: Bindings; outputs: Bindings }>;
type LaunchName = keyof typeof LAUNCHES;
type Slots = Partial<Record<string, Tensor | null>>;

/** Every binding the shader tests; a launch that does not declare one has it absent. */
const SHADER_BINDINGS = ['r', 'g', 'y', 'part', 'stats', 'w', 'b', 'running_mean', 'out', 'dres', 'dw', 'db', 'nbt'];

/** Each launch declared once; its workgroup size is plan()'s, chosen per launch. */
const KERNELS = Object.fromEntries(
  Object.entries(LAUNCHES).map(([name, { inputs, outputs }]) => {
    const declared: Bindings = { ...inputs, ...outputs };
    const defines = Object.fromEntries(SHADER_BINDINGS.map((b) => [hasFlag(b), b in declared]));
    return [name, defineKernel({ name, source, workgroupSize: 64, uniforms: UNIFORMS, inputs, outputs, defines })];
  }),
) as Record<LaunchName, KernelDef<typeof UNIFORMS>>;

/** The uniforms of the plan (the kernel API adds each bound tensor's offset). */
function uniforms(d: Dims, p: Plan, momentum = 0, eps = 0) {
  return { c: d.c, s: p.s, m: p.m, chunk: p.chunk, chunks: p.chunks, momentum, eps };
}

/** One launch over the [chunks, C] grid; bindings left out (null) are not declared. */
function launch(name: LaunchName, d: Dims, p: Plan, flags: Flags, slots: Slots, u: ReturnType<typeof uniforms>): void {
  const def = KERNELS[name];
  const pick = (names: readonly string[]) => names.map((n) => slots[n] ?? null);
  const inputs = pick(def.inputNames);
  const outputs = pick(def.outputNames);
  let key = `${p.vec4}|`;
  for (const f of FLAGS) key += flags[f] ? '1' : '0';
  for (const t of inputs) key += t ? '1' : '0';
  for (const t of outputs) key += t ? '1' : '0';
  // The key fixes every template value, so they are built only for a variant not seen before.
  const defines = () => ({ VTYPE: p.vec4 ? 'vec4<f32>' : 'f32', LANES: p.vec4 ? 4 : 1, VEC4: p.vec4, ...Object.fromEntries(FLAGS.map((f) => [f, !!flags[f]])) });
  def.launch({ inputs, outputs, uniforms: u, workgroups: [p.chunks, d.c], workgroupSize: p.wg, defines, key });
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

/** Batch normalisation over all axes but 1 (channels), with optional affine parameters and running statistics. */
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
    launch('batch_norm_stats', d, p, { STATS: true, SERIAL: serial }, { x: src, part }, uniforms(d, p));
    if (opts.sync) syncStatistics(engine, part, d.c, p.chunks, opts.sync);
  }
  const slots: Slots = {
    x: src, part, w: weight, b: bias, r: res, stats, out: y, nbt,
    running_mean: running ? runningMean : null, running_var: running ? runningVar : null,
  };
  const u = uniforms(d, p, momentum, eps);
  launch('batch_norm', d, p, { APPLY: true, TRAIN: training, UPDATE: update, RELU: relu }, slots, u);
  part?.dispose();

  const inputs = [x, weight, bias, residual].filter((t): t is Tensor => !!t);
  const op = relu ? (residual ? 'batch_norm_add_relu' : 'batch_norm_relu') : residual ? 'batch_norm_add' : 'batch_norm';
  const out = record(y, op, inputs, (g) => {
    const sync = training ? (opts.sync ?? null) : null;
    const gr = backward(engine, g, d, { src, stats, y, weight, bias, training, relu, sync, needDx: x.requiresGrad, needRes: !!residual?.requiresGrad });
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
  sync: BatchNormSync | null;
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
  const u = uniforms(d, p);
  const common: Slots = { x: sv.src, g: gc, y, stats: sv.stats };
  const flags = { GRAD: true, RELU: sv.relu, TRAIN: sv.training };
  let part: Tensor | null = null;
  if ((sv.training && dx) || dw || db) {
    part = engine.empty([d.c * p.chunks * 4]);
    launch('batch_norm_backward_reduce', d, p, { ...flags, GRAD_REDUCE: true, SERIAL: engine.backend.isCpuAdapter }, { ...common, part }, u);
  }
  // Synchronised, the input gradient needs the global sums, the parameters' gradients the local ones.
  const sync = dx ? sv.sync : null;
  if (sync) syncGradientSums(engine, part!, d.c, p.chunks, d.n * d.s, { dw, db }, sync);
  const outs: Slots = { out: dx, dres: dres === gc ? null : dres, dw: sync ? null : dw, db: sync ? null : db };
  if (Object.values(outs).some((t) => t)) {
    launch('batch_norm_backward', d, p, { ...flags, GRAD_APPLY: true }, { ...common, ...outs, part, w: sv.weight }, u);
  }
  part?.dispose();
  if (gc !== g && gc !== dres) gc.dispose();
  return { dx, dw, db, dres };
}
