// Losses and similarity measures, composed from tested primitives (log-softmax, one-hot, elementwise
// ops, reductions): no kernels of their own.

import { Tensor } from '../engine.js';
import { broadcastShapes, fmt, normAxis, sameShape } from '../shape.js';
import { checkInputs } from './map.js';
import { add, clamp, div, mul, neg, rsqrt } from './elementwise.js';
import { expand, sum } from './broadcast.js';
import { mean } from './reduce.js';
import { oneHot } from './gather.js';
import { logSoftmax } from './softmax.js';

/** How a loss reduces over the batch, as PyTorch's `reduction`. */
export type Reduction = 'mean' | 'sum' | 'none';

/** Host labels are range-checked here; a tensor of labels is checked by shape and dtype only. */
function labelTensor(op: string, logits: Tensor, labels: Tensor | ArrayLike<number>): Tensor {
  const [n, k] = logits.shape;
  if (labels instanceof Tensor) {
    if (labels.dtype !== 'i32' || !sameShape(labels.shape, [n])) {
      throw new Error(`${op}: labels ${labels} do not match logits ${fmt(logits.shape)} (expects i32 [${n}])`);
    }
    return labels;
  }
  if (labels.length !== n) throw new Error(`${op}: ${labels.length} labels for logits ${fmt(logits.shape)}`);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= k) {
      throw new Error(`${op}: label ${y} at position ${i} is out of range for ${k} classes (logits ${fmt(logits.shape)})`);
    }
  }
  return logits.engine.tensor(labels, [n], { dtype: 'i32' });
}

/**
 * F.cross_entropy for logits [N, K] and class labels (an i32 tensor [N] or host integers), with
 * PyTorch's label smoothing: the target is (1 - ε)·one_hot + ε/K, so the loss per sample is
 * (1 - ε)·(-log p[label]) + ε·mean_k(-log p[k]). Host labels out of range throw; a label tensor cannot
 * be checked without a readback, so a bad label there (an all-zero one-hot row) makes its loss
 * non-finite (a division by the row's zero count) rather than a plausible number.
 */
export function crossEntropy(
  logits: Tensor,
  labels: Tensor | ArrayLike<number>,
  opts: { reduction?: Reduction; labelSmoothing?: number } = {},
): Tensor {
  const op = 'cross_entropy';
  checkInputs(op, [logits]);
  if (logits.ndim !== 2) throw new Error(`${op}: logits must be [N, K], got ${fmt(logits.shape)}`);
  const { reduction = 'mean', labelSmoothing: eps = 0 } = opts;
  if (!(eps >= 0 && eps <= 1)) throw new Error(`${op}: labelSmoothing must lie in [0, 1], got ${eps}`);
  const y = labelTensor(op, logits, labels);
  const hot = oneHot(y, logits.shape[1]);
  if (y !== labels) y.dispose();
  const logp = logSoftmax(logits, 1);
  let perSample = div(neg(sum(mul(logp, hot), 1)), sum(hot, 1));
  if (eps > 0) perSample = add(mul(perSample, 1 - eps), mul(mean(logp, 1), -eps));
  if (reduction === 'none') return perSample;
  return reduction === 'sum' ? sum(perSample) : mean(perSample);
}

/** F.normalize: x / max(‖x‖₂, eps) along `axis`, computed as x·rsqrt(max(Σx², eps²)) (no 0/0 at x = 0). */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  const a = normAxis('l2_normalize', axis, x.ndim);
  return mul(x, rsqrt(clamp(sum(mul(x, x), a, true), eps * eps)));
}

/** F.cosine_similarity with ε on each norm: a·b / (max(‖a‖, ε)·max(‖b‖, ε)) along `axis`. */
export function cosineSimilarity(a: Tensor, b: Tensor, axis = -1, eps = 1e-8): Tensor {
  checkInputs('cosine_similarity', [a, b]);
  const shape = broadcastShapes('cosine_similarity', a.shape, b.shape);
  const ax = normAxis('cosine_similarity', axis, shape.length);
  const ea = sameShape(a.shape, shape) ? a : expand(a, shape);
  const eb = sameShape(b.shape, shape) ? b : expand(b, shape);
  return sum(mul(l2Normalize(ea, ax, eps), l2Normalize(eb, ax, eps)), ax);
}
