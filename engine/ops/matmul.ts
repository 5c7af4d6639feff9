// matmul, batched matmul and linear (x·Wᵀ + b, PyTorch's layout) on one register-tiled kernel
// (matmul.wgsl). Backward passes use transposed views of the saved operands: no copies.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { fmt, numel } from '../shape.js';
import { checkInputs } from './map.js';
import { contiguous, reshape, transpose } from './view.js';
import { sum, sumTo } from './broadcast.js';
import { gemmKernel } from './gemm-kernel.js';
import source from './matmul.wgsl';

/**
 * Tile configurations (see the shader). On GPUs each invocation owns an 8×8 block: 64 accumulators
 * is the classic SGEMM register budget, and it halves the workgroup-memory traffic per multiply-add
 * compared with 4×4 blocks. Large outputs take 128×128 tiles (16×16 invocations, 8-deep slabs);
 * smaller ones 64×64 tiles, so that a modest GEMM still spreads over enough workgroups to fill a GPU.
 * CPU adapters use the unstaged variant with 8×8 blocks (measured best of the sizes tried on lavapipe).
 */
const LARGE_TILE = { STAGED: true, TM: 8, TN: 8, WX: 16, WY: 16, BK: 8 };
const SMALL_TILE = { STAGED: true, TM: 8, TN: 8, WX: 8, WY: 8, BK: 16 };
const CPU_TILE = { STAGED: false, TM: 8, TN: 8, WX: 16, WY: 16, BK: 0 };

const UNIFORMS = {
  m: 'u32', n: 'u32', k: 'u32',
  a_sb: 'u32', a_sm: 'u32', a_sk: 'u32',
  b_sb: 'u32', b_sk: 'u32', b_sn: 'u32',
} as const;

const kernel = gemmKernel({ name: 'matmul', source, uniforms: UNIFORMS, strided: ['a', 'b'] });

function chooseTile(cpu: boolean, batch: number, m: number, n: number): typeof LARGE_TILE {
  if (cpu) return CPU_TILE;
  return batch * m * n >= 2048 * 2048 ? LARGE_TILE : SMALL_TILE;
}

interface Operand {
  t: Tensor;
  batchStride: number;
  rowStride: number;
  colStride: number;
}

/** View a ≥2-D tensor as [batch, rows, cols] with one batch stride (copying only if its batch axes cannot merge). */
function asBatched(t: Tensor, batch: number): Operand {
  const nd = t.ndim;
  let src = t;
  let batchStride = 0;
  if (nd > 2) {
    // Leading axes merge into one batch axis when they are laid out contiguously with each other.
    let ok = true;
    for (let i = nd - 3; i > 0; i--) {
      if (src.shape[i - 1] !== 1 && src.strides[i - 1] !== src.strides[i] * src.shape[i]) ok = false;
    }
    if (!ok) src = contiguous(t);
    const nb = numel(src.shape.slice(0, nd - 2));
    batchStride = nb === 1 ? 0 : src.strides[nd - 3];
    if (nb !== batch && nb !== 1) throw new Error('matmul: internal batch mismatch');
  }
  return { t: src, batchStride, rowStride: src.strides[nd - 2], colStride: src.strides[nd - 1] };
}

/** Raw batched GEMM: C[batch, m, n] = A·B (+ bias[n]). No tape. */
function gemm(a: Operand, b: Operand, batch: number, m: number, k: number, n: number, bias?: Tensor): Tensor {
  const engine = a.t.engine;
  const out = engine.empty([batch, m, n]);
  const tile = chooseTile(engine.backend.isCpuAdapter, batch, m, n);
  const bm = tile.TM * tile.WY;
  const bn = tile.TN * tile.WX;
  // Stage each operand along its unit-stride axis (see the shader's comment on coalescing).
  const aKFast = a.colStride === 1 || a.rowStride !== 1;
  const bNFast = b.colStride === 1 || b.rowStride !== 1;
  kernel.launch({
    name: bias ? 'linear' : 'matmul',
    inputs: [a.t, b.t, bias],
    outputs: [out],
    uniforms: {
      m, n, k,
      a_sb: a.batchStride, a_sm: a.rowStride, a_sk: a.colStride,
      b_sb: b.batchStride, b_sk: b.rowStride, b_sn: b.colStride,
    },
    workgroups: [Math.ceil(n / bn), Math.ceil(m / bm), batch],
    workgroupSize: [tile.WX, tile.WY],
    defines: { ...tile, A_K_FAST: aKFast, B_N_FAST: bNFast },
    key: `${tile.STAGED}|${tile.TM}|${tile.TN}|${tile.BK}|${!!bias}|${aKFast}|${bNFast}`,
    flops: 2 * batch * m * n * k,
  });
  return out;
}

/**
 * Matrix product with PyTorch's rules for ≥2-D operands: the last two axes multiply, leading axes
 * broadcast (equal, or one side 2-D). 1-D operands are promoted to a row/column and squeezed back.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkInputs('matmul', [a, b]);
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: scalars are not matrices (${fmt(a.shape)} @ ${fmt(b.shape)})`);
  if (a.ndim === 1) return reshape(matmul(reshape(a, [1, a.shape[0]]), b), [...b.shape.slice(0, -2), b.shape[b.ndim - 1]]);
  if (b.ndim === 1) return reshape(matmul(a, reshape(b, [b.shape[0], 1])), a.shape.slice(0, -1));
  const m = a.shape[a.ndim - 2];
  const k = a.shape[a.ndim - 1];
  const n = b.shape[b.ndim - 1];
  if (b.shape[b.ndim - 2] !== k) {
    throw new Error(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)}`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batchShape: number[];
  if (bBatch.length === 0) batchShape = [...aBatch];
  else if (aBatch.length === 0) batchShape = [...bBatch];
  else if (aBatch.length === bBatch.length && aBatch.every((d, i) => d === bBatch[i])) batchShape = [...aBatch];
  else throw new Error(`matmul: batch dimensions of ${fmt(a.shape)} and ${fmt(b.shape)} do not match`);

  // A 2-D right operand with a batched left one is a single tall GEMM (better tiles, and dB needs no
  // reduction over the batch).
  if (bBatch.length === 0 && aBatch.length > 0) {
    return reshape(matmul(reshape(a, [-1, k]), b), [...aBatch, m, n]);
  }
  const batch = numel(batchShape);
  const raw = gemm(asBatched(a, batch), asBatched(b, batch), batch, m, k, n);
  const out = reshape(raw, [...batchShape, m, n]);
  raw.dispose();
  return record(out, 'matmul', [a, b], (g) => [
    sumTo(matmul(g, transpose(b, -2, -1)), a.shape),
    sumTo(matmul(transpose(a, -2, -1), g), b.shape),
  ]);
}

/** y = x·Wᵀ + b with W of shape [out, in] (nn.Linear); x may have any leading axes. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  checkInputs('linear', bias ? [x, weight, bias] : [x, weight]);
  const inF = x.shape[x.ndim - 1];
  if (weight.ndim !== 2 || weight.shape[1] !== inF) {
    throw new Error(`linear: input ${fmt(x.shape)} does not match weight ${fmt(weight.shape)} ([out, in])`);
  }
  const outF = weight.shape[0];
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new Error(`linear: bias ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)}`);
  }
  const x2 = reshape(x, [-1, inF]);
  const rows = x2.shape[0];
  const wt = transpose(weight, 0, 1);
  const raw = gemm(asBatched(x2, 1), asBatched(wt, 1), 1, rows, inF, outF, bias ?? undefined);
  wt.dispose();
  const y2d = reshape(raw, [rows, outF]);
  raw.dispose();
  const inputs = bias ? [x2, weight, bias] : [x2, weight];
  const y = record(y2d, 'linear', inputs, (g) => [
    matmul(g, weight),
    matmul(transpose(g, 0, 1), x2),
    ...(bias ? [sum(g, 0)] : []),
  ]);
  return reshape(y, [...x.shape.slice(0, -1), outF]);
}
