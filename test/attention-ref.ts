// References for the fused attention kernels: a float64 one with an explicit softmax (what "correct"
// means), and the composed engine version (matmul + a stable softmax made of existing ops), which is
// the reference-of-record the fused kernels are benchmarked against.

import { ops, type Tensor } from '../engine/index.js';
import { Nd } from './ref.js';

/** softmax(q·kᵀ·scale)·v in float64 over the last two axes; q [..., Nq, d], k and v [..., Nk, d]. */
export function attentionRef(q: Nd, k: Nd, v: Nd, scale = 1 / Math.sqrt(q.shape[q.shape.length - 1])): Nd {
  const [nq, d] = q.shape.slice(-2);
  const nk = k.shape[k.shape.length - 2];
  const batch = q.size / (nq * d);
  const out = Nd.zeros(q.shape);
  const s = new Float64Array(nk);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < nq; i++) {
      let m = -Infinity;
      for (let j = 0; j < nk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q.data[(b * nq + i) * d + c] * k.data[(b * nk + j) * d + c];
        s[j] = dot * scale;
        m = Math.max(m, s[j]);
      }
      let total = 0;
      for (let j = 0; j < nk; j++) total += (s[j] = Math.exp(s[j] - m));
      for (let j = 0; j < nk; j++) {
        const p = s[j] / total;
        for (let c = 0; c < d; c++) out.data[(b * nq + i) * d + c] += p * v.data[(b * nk + j) * d + c];
      }
    }
  }
  return out;
}

/** The same attention composed of the engine's own ops (differentiable through each of them). */
export function composedAttention(q: Tensor, k: Tensor, v: Tensor, scale = 1 / Math.sqrt(q.shape[q.ndim - 1])): Tensor {
  const s = ops.mul(ops.matmul(q, ops.transpose(k, -2, -1)), scale);
  const e = ops.exp(ops.sub(s, ops.max(s, -1, true)));
  return ops.matmul(ops.div(e, ops.sum(e, -1, true)), v);
}
