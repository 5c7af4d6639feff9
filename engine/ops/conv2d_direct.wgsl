// Direct convolution, for the layers where conv2d.wgsl's implicit GEMM has too little K or M to pay
// for its bookkeeping on CPU adapters (lavapipe): a 1-channel stem (K = 9), and the input gradient
// into few channels (M = 1-4). There, a GEMM invocation works out where each of its columns' pixels
// lives (or that it is padding) once per tap and column, which costs about as much as the few
// multiply-adds it then does with them. SPREAD (every adapter) is the input gradient of 1×1 strided
// layers; ops/conv-direct.ts chooses.
//
// Here an invocation owns TM output channels × a run of R neighbouring output pixels of one row.
// Per input channel and kernel row it loads the run's input segment once (one bounds test per loaded
// value, a row test per kernel row), and every tap of that row reuses it from registers: the tap and
// pixel loops have literal bounds and unroll, so the segment and the TM × R accumulators are
// registers and every index into them is a constant. Only the channel loop reads its bound from the
// uniforms (fully unrolled channel loops compile for minutes on lavapipe).
//
//   CONV    dst[n, m, y, x] = bias[m] + Σ_c Σ_kh,kw w[m, c, kh, kw] · src[n, c, y·S − P + kh, x·S − P + kw]
//           the forward (src = x), and the input gradient of a stride-1 convolution (src = dy,
//           dst = dx, the kernel flipped and transposed: FLIP, W_M and W_C, and P = K − 1 − pad).
//   SPREAD  the input gradient of a 1×1 convolution of stride S, pad 0: dst[n, m, y, x] =
//           Σ_c w[c, m] · src[n, c, y / S, x / S] where S divides y and x, and 0 elsewhere; runs start
//           at multiples of S, so which pixels of a run get a sum is known when the shader compiles.
//
// Template values (ops/conv-direct.ts): SRC_H, SRC_W (src plane), DST_C, DST_H, DST_W, KH, KW, S, P,
// TM, R (pixels per run), RUNS (runs per row), W_M, W_C (weight strides of m and c), FLIP, SPREAD.
// Uniforms: invocations, row_width (grid), channels (src channels), the four offsets.

#include "grid"

const SRC_H: i32 = ${SRC_H};
const SRC_W: i32 = ${SRC_W};
const DST_C: u32 = ${DST_C};
const DST_H: u32 = ${DST_H};
const DST_W: u32 = ${DST_W};
const KH: u32 = ${KH};
const KW: u32 = ${KW};
const S: i32 = ${S};
const P: i32 = ${P};
const TM: u32 = ${TM};
const R: u32 = ${R};
const RUNS: u32 = ${RUNS};
const MBLOCKS: u32 = (DST_C + TM - 1u) / TM;
const W_M: u32 = ${W_M};
const W_C: u32 = ${W_C};
// Input pixels a run reads along its row: the taps of R outputs S apart.
const SEG: u32 = (R - 1u) * u32(S) + KW;

// Weight of output channel m, input channel c, tap (kh, kw); a flipped kernel reads (KH-1-kh, KW-1-kw).
fn w_index(m: u32, c: u32, kh: u32, kw: u32) -> u32 {
#if ${FLIP}
  return u.w_off + m * W_M + c * W_C + (KH - 1u - kh) * KW + (KW - 1u - kw);
#else
  return u.w_off + m * W_M + c * W_C + kh * KW + kw;
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let id = flat_index(gid);
  if (id >= u.invocations) { return; }
  // id = ((n · MBLOCKS + block) · DST_H + y) · RUNS + run: neighbouring invocations take neighbouring
  // runs and rows of one image and channel block.
  let run = id % RUNS;
  let y = (id / RUNS) % DST_H;
  let block = (id / (RUNS * DST_H)) % MBLOCKS;
  let n = id / (RUNS * DST_H * MBLOCKS);
  let m0 = block * TM;
  let x0 = run * R;
  // Channels past DST_C read the last one's weights (finite, never stored): no tests in the loop.
  var w_rows: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { w_rows[i] = min(m0 + i, DST_C - 1u); }
  var acc: array<f32, TM * R>;
  for (var e = 0u; e < TM * R; e++) { acc[e] = 0.0; }
  let plane = u32(SRC_H * SRC_W);

#if ${SPREAD}
  // Rows that S does not divide receive nothing (y / S is always a row of dy: pad 0, one tap).
  let row_ok = y % u32(S) == 0u;
  let src_row = u.src_off + n * u.channels * plane + (y / u32(S)) * u32(SRC_W) + x0 / u32(S);
  for (var c = 0u; c < u.channels; c++) {
    var seg: array<f32, R>;
    for (var r = 0u; r < R; r += u32(S)) {
      let ok = row_ok && i32((x0 + r) / u32(S)) < SRC_W;
      seg[r] = select(0.0, src[select(0u, src_row + c * plane + r / u32(S), ok)], ok);
    }
    for (var i = 0u; i < TM; i++) {
      let wv = w[w_index(w_rows[i], c, 0u, 0u)];
      for (var r = 0u; r < R; r += u32(S)) { acc[i * R + r] = fma(wv, seg[r], acc[i * R + r]); }
    }
  }
#else
  let ix0 = i32(x0) * S - P;
  let img = u.src_off + n * u.channels * plane;
  for (var c = 0u; c < u.channels; c++) {
    for (var kh = 0u; kh < KH; kh++) {
      let iy = i32(y) * S - P + i32(kh);
      let row_ok = u32(iy) < u32(SRC_H);  // negative rows wrap to large values
      let row = i32(img + c * plane) + iy * SRC_W + ix0;
      var seg: array<f32, SEG>;
      for (var t = 0u; t < SEG; t++) {
        // A stride above the kernel width skips pixels no tap reads (a 1×1 stride-2 reads every other).
        if (t % u32(S) < KW) {
          let ok = row_ok && u32(ix0 + i32(t)) < u32(SRC_W);
          seg[t] = select(0.0, src[select(0u, u32(row + i32(t)), ok)], ok);
        }
      }
      for (var kw = 0u; kw < KW; kw++) {
        for (var i = 0u; i < TM; i++) {
          let wv = w[w_index(w_rows[i], c, kh, kw)];
          for (var r = 0u; r < R; r++) { acc[i * R + r] = fma(wv, seg[r * u32(S) + kw], acc[i * R + r]); }
        }
      }
    }
  }
#endif

  let out = u.dst_off + (n * DST_C * DST_H + y) * DST_W + x0;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m < DST_C) {
      var b = 0.0;
#if ${HAS_BIAS}
      b = bias[u.bias_off + m];
#endif
      for (var r = 0u; r < R; r++) {
        if (x0 + r < DST_W) { dst[out + m * DST_H * DST_W + r] = acc[i * R + r] + b; }
      }
    }
  }
}
