// Fused scaled-dot-product attention: softmax(q·kᵀ·scale)·v in one kernel (attention.wgsl)
// and its backward in two (attention_backward.wgsl), FlashAttention-2 style: the N×N
// probabilities are recomputed from the saved per-row logsumexp instead of being stored.

import type { Tensor } from '../engine.js';
import type { Defines } from '../shader.js';
import { record } from '../autograd.js';
import { fmt, numel } from '../shape.js';
import { grid1d } from '../runtime.js';
import { defineKernel, type BindingSpec, type KernelDef, type UniformFields } from '../kernel.js';
import { checkInputs } from './map.js';
import { contiguous } from './view.js';
import forwardSource from './attention.wgsl';
import backwardSource from './attention_backward.wgsl';

const OP = 'scaled_dot_product_attention';
/** Largest head dim: a block of rows must fit workgroup memory and a few rows an invocation's registers. */
const MAX_HEAD_DIM = 64;
/**
 * Streamed rows per block: 8 rows of d = 64 in two tiles are 4 KiB, which leaves room for the
 * partial-score exchange of 32-64 invocations within WebGPU's guaranteed 16 KiB of workgroup memory.
 */
const BS = 8;
const WORKGROUP_BYTES = 16384;
/**
 * Row data an invocation keeps in registers: at most 4 vec4 columns of each of TM rows' arrays, and
 * 128 floats in all, which real GPUs hold without spilling. Splitting a row of d = 64 among 4
 * invocations is what lets an invocation own 2-4 rows, so each streamed value it reads from
 * workgroup memory feeds 2-4 rows (on lavapipe such reads, not the multiply-adds, set the speed).
 */
const DC_MAX = 4;
const REG_FLOATS = 128;
/** Invocations per workgroup: at least an NVIDIA warp or AMD wave32, at most 64. */
const MIN_THREADS = 32;
const MAX_THREADS = 64;

interface KernelShape {
  /** Row arrays an invocation keeps per owned row (forward: q, acc; dQ: q, dO, dq; dKV: k, v, dk, dv). */
  arrays: number;
  /** Most rows per invocation the shader supports. */
  maxTm: number;
  /** Workgroup memory besides the two tiles and the exchange. */
  statBytes: number;
}
const FORWARD: KernelShape = { arrays: 2, maxTm: 4, statBytes: 0 };
const BACKWARD_DQ: KernelShape = { arrays: 3, maxTm: 2, statBytes: 0 };
const BACKWARD_DKV: KernelShape = { arrays: 4, maxTm: 2, statBytes: 2 * BS * 4 };

/** Defines for head dim d and `rows` owned rows per head (see the shaders for their meaning). */
function config(d: number, rows: number, k: KernelShape): Defines {
  const d4 = Math.ceil(d / 4);
  const dc = Math.min(d4, DC_MAX);
  const parts = Math.ceil(d4 / dc);
  let tm = k.maxTm;
  while (tm > 1 && k.arrays * tm * dc * 4 > REG_FLOATS) tm /= 2;
  const bytes = (rt: number) => 2 * BS * dc * parts * 16 + k.statBytes + parts * BS * rt * 16;
  // Of the workgroup sizes that fit, the one that pads the sequence least (the larger on ties):
  // ViT's N = 65 would leave half of 64-row workgroups idle.
  let rt = 0;
  let padded = Infinity;
  for (let r = 1; r * parts <= MAX_THREADS; r *= 2) {
    if (r * parts < MIN_THREADS || bytes(r) > WORKGROUP_BYTES) continue;
    const p = Math.ceil(rows / (r * tm)) * r * tm;
    if (p <= padded) [rt, padded] = [r, p];
  }
  return { D: d, DC: dc, PARTS: parts, TM: tm, RT: rt, BS, THREADS: rt * parts };
}

const FORWARD_UNIFORMS = { n_q: 'u32', n_k: 'u32', bh: 'u32', grid_y: 'u32', scale_log2: 'f32' } as const;
const BACKWARD_UNIFORMS = { n_own: 'u32', n_str: 'u32', bh: 'u32', grid_y: 'u32', scale_log2: 'f32', scale: 'f32' } as const;

type Kind = 'forward' | 'dq' | 'dkdv';

/** Rows are loaded as IO_T, chosen per launch: vec4<f32> when D and every offset allow it, else f32. */
const ROW: BindingSpec = { type: '${IO_T}', dtype: 'f32' };

/** The three kernels; a launch picks the row type and its workgroup size (config's THREADS). */
const KERNELS: Record<Kind, KernelDef<UniformFields>> = {
  forward: defineKernel<UniformFields>({
    name: OP,
    source: forwardSource,
    workgroupSize: MAX_THREADS,
    uniforms: FORWARD_UNIFORMS,
    inputs: { q: ROW, x: ROW, y: ROW },
    outputs: { out: ROW, lse: 'f32' },
  }),
  dq: defineKernel<UniformFields>({
    name: `${OP}_backward_dq`,
    source: backwardSource,
    workgroupSize: MAX_THREADS,
    uniforms: BACKWARD_UNIFORMS,
    inputs: { a: ROW, b: ROW, x: ROW, y: ROW, lse: 'f32', o: ROW },
    outputs: { grad0: ROW, delta_out: 'f32' },
    defines: { DKDV: false },
  }),
  dkdv: defineKernel<UniformFields>({
    name: `${OP}_backward_dkdv`,
    source: backwardSource,
    workgroupSize: MAX_THREADS,
    uniforms: BACKWARD_UNIFORMS,
    inputs: { a: ROW, b: ROW, x: ROW, y: ROW, lse: 'f32', delta: 'f32' },
    outputs: { grad0: ROW, grad1: ROW },
    defines: { DKDV: true },
  }),
};

/**
 * One dispatch: a workgroup per R owned rows of each head (`own` rows; the uniforms besides the
 * head count and grid, which this adds).
 */
function launch(kind: Kind, defines: Defines, inputs: Tensor[], outputs: Tensor[], own: number, uniforms: Record<string, number>): void {
  const bh = numel(inputs[0].shape.slice(0, -2));
  const [gy, gz] = grid1d(bh);
  // Whole-vec4 buffer access needs every row start, hence D and every offset, to be a multiple of 4.
  const vec = (defines.D as number) % 4 === 0 && [...inputs, ...outputs].every((t) => t.offset % 4 === 0);
  KERNELS[kind].launch({
    inputs,
    outputs,
    uniforms: { ...uniforms, bh, grid_y: gy },
    workgroups: [Math.ceil(own / ((defines.RT as number) * (defines.TM as number))), gy, gz],
    workgroupSize: defines.THREADS as number,
    defines: { ...defines, VEC_IO: vec, IO_T: vec ? 'vec4<f32>' : 'f32' },
  });
}

function validate(q: Tensor, k: Tensor, v: Tensor): void {
  const shapes = `q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)}`;
  const fail = (why: string) => new Error(`${OP}: ${why} (${shapes})`);
  if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim) throw fail('q, k, v must have the same rank, at least 2');
  if (q.shape.slice(0, -2).some((n, i) => n !== k.shape[i] || n !== v.shape[i])) {
    throw fail('q, k, v must have the same leading (batch, head) dims');
  }
  if (k.shape.some((n, i) => n !== v.shape[i])) throw fail('k and v must have the same shape');
  const d = q.shape[q.ndim - 1];
  if (k.shape[k.ndim - 1] !== d) throw fail('q and k must have the same head dim');
  if (d < 1 || d > MAX_HEAD_DIM) throw fail(`head dim must be between 1 and ${MAX_HEAD_DIM}`);
  if (k.shape[k.ndim - 2] === 0) throw fail('there must be at least one key');
  for (const t of [q, k, v]) if (t.dtype !== 'f32') throw fail(`expects f32 tensors, got ${t}`);
}

/**
 * softmax(q·kᵀ·scale)·v over the last two axes, PyTorch's F.scaled_dot_product_attention without a
 * mask: q [..., Nq, d], k and v [..., Nk, d] with equal leading dims (e.g. [B, H, N, d] or [B·H, N, d]).
 * Non-contiguous inputs (slices of a fused qkv projection) are copied to contiguous first.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, scale?: number): Tensor {
  const engine = checkInputs(OP, [q, k, v]);
  validate(q, k, v);
  const d = q.shape[q.ndim - 1];
  const nq = q.shape[q.ndim - 2];
  const nk = k.shape[k.ndim - 2];
  const bh = numel(q.shape.slice(0, -2));
  const sc = scale ?? 1 / Math.sqrt(d);
  const [qc, kc, vc] = [q, k, v].map(contiguous);
  const out = engine.empty(q.shape);
  const lse = engine.empty([bh, nq]);
  if (out.size > 0) {
    launch('forward', config(d, nq, FORWARD), [qc, kc, vc], [out, lse], nq, {
      n_q: nq, n_k: nk, scale_log2: sc * Math.LOG2E,
    });
  }
  record(out, OP, [qc, kc, vc], (g) => attentionBackward(g, qc, kc, vc, out, lse, sc));
  if (!out.node) {
    lse.dispose();
    for (const [c, x] of [[qc, q], [kc, k], [vc, v]]) if (c !== x) c.dispose();
  }
  return out;
}

/** dq, dk, dv from the output gradient g: one kernel over query rows (dq, delta), one over key rows (dk, dv). */
function attentionBackward(g: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, scale: number): Tensor[] {
  const engine = q.engine;
  const d = q.shape[q.ndim - 1];
  const nq = q.shape[q.ndim - 2];
  const nk = k.shape[k.ndim - 2];
  const bh = numel(q.shape.slice(0, -2));
  const gc = contiguous(g);
  const dq = engine.empty(q.shape);
  const dk = engine.empty(k.shape);
  const dv = engine.empty(v.shape);
  const delta = engine.empty([bh, nq]);
  const scales = { scale_log2: scale * Math.LOG2E, scale };
  if (dq.size > 0) {
    launch('dq', config(d, nq, BACKWARD_DQ), [q, gc, k, v, lse, out], [dq, delta], nq, {
      n_own: nq, n_str: nk, ...scales,
    });
  }
  if (dk.size > 0) {
    launch('dkdv', config(d, nk, BACKWARD_DKV), [k, v, q, gc, lse, delta], [dk, dv], nk, {
      n_own: nk, n_str: nq, ...scales,
    });
  }
  delta.dispose();
  if (gc !== g) gc.dispose();
  return [dq, dk, dv];
}
