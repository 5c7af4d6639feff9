// SimCLR's NT-Xent (Chen et al. 2020): the 2B normalised embeddings [z_i; z_j] are compared with each
// other by cosine similarity / τ; row r is a 2B-1-way classification (itself excluded) whose answer is
// the other view of the same image.

import type { Tensor } from '../../engine/index.js';
import { fmt, sameShape } from '../../engine/index.js';
import { add, concat, crossEntropy, div, l2Normalize, matmul, mean, slice, transpose } from '../../engine/ops/index.js';

/** Temperature and reduction of the NT-Xent loss. */
export interface NtXentOptions {
  /** τ; SimCLR's reference value for HVP is 0.1. */
  temperature?: number;
  /** Return ℓ_(i,b) + ℓ_(j,b) for every sample b ([B], the HVP pair score) instead of the mean over 2B rows. */
  perSample?: boolean;
}

/**
 * A logit far below any cosine / τ (|cos| ≤ 1) that removes the diagonal from every row's softmax.
 * It is finite on purpose: -Infinity would make the one-hot product in cross-entropy 0·(-∞) = NaN.
 */
const SELF_LOGIT = -1e9;

/** SimCLR's NT-Xent loss of two views' embeddings [B, D]. */
export function ntXentLoss(zi: Tensor, zj: Tensor, opts: NtXentOptions = {}): Tensor {
  const { temperature = 0.1, perSample = false } = opts;
  if (zi.ndim !== 2 || !sameShape(zi.shape, zj.shape)) {
    throw new Error(`nt_xent_loss: z_i and z_j must both be [B, D], got ${fmt(zi.shape)} and ${fmt(zj.shape)}`);
  }
  if (!(temperature > 0)) throw new Error(`nt_xent_loss: temperature must be positive, got ${temperature}`);
  const b = zi.shape[0];
  const z = l2Normalize(concat([zi, zj], 0), 1);
  const logits = add(div(matmul(z, transpose(z, 0, 1)), temperature), selfMask(zi, 2 * b));
  const positives = Array.from({ length: 2 * b }, (_, r) => (r + b) % (2 * b));
  const rows = crossEntropy(logits, positives, { reduction: 'none' });
  if (!perSample) return mean(rows);
  return add(slice(rows, 0, 0, b), slice(rows, 0, b, 2 * b));
}

/** [n, n] constant: SELF_LOGIT on the diagonal, 0 elsewhere. */
function selfMask(like: Tensor, n: number): Tensor {
  const m = new Float32Array(n * n);
  for (let r = 0; r < n; r++) m[r * n + r] = SELF_LOGIT;
  return like.engine.tensor(m, [n, n]);
}
