// Float64 reference of bicubic resizing (PyTorch's formula: Keys' cubic with A = -0.75, taps clamped at
// the border), shared by test/interpolate.test.ts and the self-check (test/selfcheck/).

import { Nd } from './ref.js';

const A = -0.75;
const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;

/** [out, in] matrix of one axis: row o holds the weights with which output o reads each input pixel. */
function axisWeights(inSize: number, outSize: number, ratio: number): number[][] {
  const w = [...Array(outSize)].map(() => new Array<number>(inSize).fill(0));
  for (let o = 0; o < outSize; o++) {
    const s = ratio * (o + 0.5) - 0.5;
    const b = Math.floor(s);
    const t = s - b;
    [far(t + 1), near(t), near(1 - t), far(2 - t)].forEach((wt, j) => {
      w[o][Math.min(Math.max(b - 1 + j, 0), inSize - 1)] += wt;
    });
  }
  return w;
}

export function bicubicRef(x: Nd, outH: number, outW: number, scale?: [number, number]): Nd {
  const [n, c, h, w] = x.shape;
  const wy = axisWeights(h, outH, scale ? 1 / scale[0] : h / outH);
  const wx = axisWeights(w, outW, scale ? 1 / scale[1] : w / outW);
  const out = Nd.zeros([n, c, outH, outW]);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        let acc = 0;
        for (let iy = 0; iy < h; iy++) {
          if (wy[oy][iy] === 0) continue;
          for (let ix = 0; ix < w; ix++) acc += wy[oy][iy] * wx[ox][ix] * x.data[(p * h + iy) * w + ix];
        }
        out.data[(p * outH + oy) * outW + ox] = acc;
      }
    }
  }
  return out;
}
