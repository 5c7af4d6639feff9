// Float64 references of batch norm, layer norm and (log-)softmax, shared by test/norm.test.ts and the
// self-check (test/selfcheck/).

import { channelStats, Nd, reduce, sumOf, zip } from './ref.js';

/** Batch norm with the given per-channel statistics (batch ones in training, running ones in eval). */
export function batchNormRef(x: Nd, w: Nd | null, b: Nd | null, mean: number[], vr: number[], eps = 1e-5): Nd {
  const [n, c] = x.shape;
  const s = x.size / (n * c);
  return x.map((v, i) => {
    const ch = Math.floor(i / s) % c;
    return ((v - mean[ch]) / Math.sqrt(vr[ch] + eps)) * (w ? w.data[ch] : 1) + (b ? b.data[ch] : 0);
  });
}

export function trainRef(x: Nd, w: Nd | null, b: Nd | null): Nd {
  const st = channelStats(x);
  return batchNormRef(x, w, b, st.mean, st.var);
}

export function layerNormRef(x: Nd, w: Nd | null, b: Nd | null, eps = 1e-5): Nd {
  const d = x.shape[x.shape.length - 1];
  const out = Nd.zeros(x.shape);
  for (let r = 0; r < x.size / d; r++) {
    const row = [...x.data.slice(r * d, (r + 1) * d)];
    const m = sumOf(row) / d;
    const rs = 1 / Math.sqrt(sumOf(row.map((v) => (v - m) ** 2)) / d + eps);
    row.forEach((v, k) => (out.data[r * d + k] = (v - m) * rs * (w ? w.data[k] : 1) + (b ? b.data[k] : 0)));
  }
  return out;
}

/** log-softmax along `axis`, via reduce (keepdim) and broadcasting zip. */
export function logSoftmaxRef(x: Nd, axis: number): Nd {
  const m = reduce(x, axis, (v) => Math.max(...v));
  const lse = zip((a, b) => a + b, m, reduce(zip((a, b) => Math.exp(a - b), x, m), axis, (v) => Math.log(sumOf(v))));
  return zip((a, b) => a - b, x, lse);
}
export const softmaxRef = (x: Nd, axis: number) => logSoftmaxRef(x, axis).map(Math.exp);
