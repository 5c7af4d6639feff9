// Float64 references of conv2d and pooling (PyTorch's F.conv2d, F.max_pool2d, F.avg_pool2d), shared by
// test/conv.test.ts and the self-check (test/selfcheck/).

import { Nd } from './ref.js';

/** PyTorch's F.conv2d in float64: x [N, Ci, H, W], w [Co, Ci, KH, KW], b [Co] or null. */
export function conv2dRef(x: Nd, w: Nd, b: Nd | null, stride: number, pad: number): Nd {
  const [n, ci, h, wd] = x.shape;
  const [co, , kh, kw] = w.shape;
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const out = Nd.zeros([n, co, oh, ow]);
  let o = 0;
  for (let bi = 0; bi < n; bi++)
    for (let c = 0; c < co; c++)
      for (let y = 0; y < oh; y++)
        for (let z = 0; z < ow; z++) {
          let s = b ? b.data[c] : 0;
          for (let i = 0; i < ci; i++)
            for (let p = 0; p < kh; p++)
              for (let q = 0; q < kw; q++) {
                const iy = y * stride - pad + p;
                const ix = z * stride - pad + q;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += x.data[((bi * ci + i) * h + iy) * wd + ix] * w.data[((c * ci + i) * kh + p) * kw + q];
              }
          out.data[o++] = s;
        }
  return out;
}

export type PoolKind = 'max' | 'avg' | 'avg-exclude-pad';

/** PyTorch's F.max_pool2d / F.avg_pool2d in float64 (floor mode, square windows). */
export function pool2dRef(x: Nd, kind: PoolKind, k: number, stride: number, pad: number): Nd {
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const out = Nd.zeros([n, c, oh, ow]);
  let o = 0;
  for (let plane = 0; plane < n * c; plane++)
    for (let y = 0; y < oh; y++)
      for (let z = 0; z < ow; z++) {
        const vals: number[] = [];
        for (let p = 0; p < k; p++)
          for (let q = 0; q < k; q++) {
            const iy = y * stride - pad + p;
            const ix = z * stride - pad + q;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) vals.push(x.data[(plane * h + iy) * w + ix]);
          }
        const sum = vals.reduce((a, v) => a + v, 0);
        out.data[o++] = kind === 'max' ? Math.max(...vals) : sum / (kind === 'avg' ? k * k : vals.length);
      }
  return out;
}
