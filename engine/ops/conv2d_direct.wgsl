// Direct convolution, for the layers where conv2d.wgsl's implicit GEMM has too little K or M to pay
// for its bookkeeping on CPU adapters (lavapipe): a 1-channel stem (K = 9), and the input gradient
// into few channels (M = 1-4). There, a GEMM invocation works out where each of its columns' pixels
// lives (or that it is padding) once per tap and column, which costs about as much as the few
// multiply-adds it then does with them. SPREAD (every adapter) is the input gradient of 1×1 strided
// layers; ops/conv-direct.ts chooses.
//
// Here an invocation owns TM output channels × a run of R neighbouring output pixels in each of RY
// (1-4) neighbouring rows. Per input channel and input row it loads the run's input segment once (one
// bounds test per loaded value, a row test per input row), and every tap of every output row that
// reads that input row reuses it from registers: with RY rows a KH-tap kernel loads RY + KH − 1 input
// rows instead of RY · KH, which matters where TM is small and loads outnumber the multiply-adds (the
// input gradient into one channel). The tap and pixel loops have literal bounds and unroll, so the
// segment and the accumulators are registers and every index into them is a constant. Each output
// row has its own accumulator array (acc0-acc3, the rows past RY compiled out): lavapipe keeps an
// array in registers only while every index into it is a constant, and indexing one array by the row
// made it a memory array, 3× slower. Only the channel and input-row loops read bounds from the
// uniforms or leave indices to run time (fully unrolled channel loops compile for minutes there).
//
//   CONV    dst[n, m, y, x] = bias[m] + Σ_c Σ_kh,kw w[m, c, kh, kw] · src[n, c, y·S − P + kh, x·S − P + kw]
//           the forward (src = x), and the input gradient of a stride-1 convolution (src = dy,
//           dst = dx, the kernel flipped and transposed: FLIP, W_M and W_C, and P = K − 1 − pad).
//   SPREAD  the input gradient of a 1×1 convolution of stride S, pad 0: dst[n, m, y, x] =
//           Σ_c w[c, m] · src[n, c, y / S, x / S] where S divides y and x, and 0 elsewhere; runs start
//           at multiples of S and RY = S, so which pixels of a run get a sum is known when the shader
//           compiles, and only an invocation's first row loads anything (the others stay zeros).
//
// Template values (ops/conv-direct.ts): SRC_H, SRC_W (src plane), DST_C, DST_H, DST_W, KH, KW, S, P,
// TM, R (pixels per run), RUNS (runs per row), RY (rows per invocation; ROW1-ROW3: RY > 1-3), W_M,
// W_C (weight strides of m and c), FLIP, SPREAD.
// Uniforms: invocations, channels (src channels); the kernel API generates row_width (grid) and the offsets.

#include "grid"
#include "bias"

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
const RY: u32 = ${RY};
const ROW_BLOCKS: u32 = (DST_H + RY - 1u) / RY;
const MBLOCKS: u32 = (DST_C + TM - 1u) / TM;
const W_M: u32 = ${W_M};
const W_C: u32 = ${W_C};
// Input pixels a run reads along its row: the taps of R outputs S apart.
const SEG: u32 = (R - 1u) * u32(S) + KW;
// Input rows the RY output rows read.
const IN_ROWS: u32 = (RY - 1u) * u32(S) + KH;

// Weight of output channel m, input channel c, tap (kh, kw); a flipped kernel reads (KH-1-kh, KW-1-kw).
fn w_index(m: u32, c: u32, kh: u32, kw: u32) -> u32 {
#if ${FLIP}
  return u.off_w + m * W_M + c * W_C + (KH - 1u - kh) * KW + (KW - 1u - kw);
#else
  return u.off_w + m * W_M + c * W_C + kh * KW + kw;
#endif
}

// One output row's share of one input row: the taps of kernel row kh (if the row is one of its taps)
// for every channel and pixel of the run.
fn row_taps(acc: ptr<function, array<f32, TM * R>>, seg: ptr<function, array<f32, SEG>>,
            w_rows: ptr<function, array<u32, TM>>, c: u32, kh: i32) {
  if (kh < 0 || kh >= i32(KH)) { return; }
  for (var kw = 0u; kw < KW; kw++) {
    for (var i = 0u; i < TM; i++) {
      let wv = w[w_index((*w_rows)[i], c, u32(kh), kw)];
      for (var r = 0u; r < R; r++) { (*acc)[i * R + r] = fma(wv, (*seg)[r * u32(S) + kw], (*acc)[i * R + r]); }
    }
  }
}

// Stores output row y of the run (rows past the last and channels past DST_C are not stored).
fn store_row(acc: ptr<function, array<f32, TM * R>>, n: u32, m0: u32, y: u32, x0: u32) {
  if (y >= DST_H) { return; }
  let out = u.off_dst + (n * DST_C * DST_H + y) * DST_W + x0;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m < DST_C) {
      let b = bias_at(m);
      for (var r = 0u; r < R; r++) {
        if (x0 + r < DST_W) { dst[out + m * DST_H * DST_W + r] = (*acc)[i * R + r] + b; }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let id = flat_index(gid);
  if (id >= u.invocations) { return; }
  // id = ((n · MBLOCKS + block) · ROW_BLOCKS + row block) · RUNS + run: neighbouring invocations take
  // neighbouring runs and rows of one image and channel block.
  let run = id % RUNS;
  let y0 = ((id / RUNS) % ROW_BLOCKS) * RY;
  let block = (id / (RUNS * ROW_BLOCKS)) % MBLOCKS;
  let n = id / (RUNS * ROW_BLOCKS * MBLOCKS);
  let m0 = block * TM;
  let x0 = run * R;
  // Channels past DST_C read the last one's weights (finite, never stored): no tests in the loop.
  var w_rows: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { w_rows[i] = min(m0 + i, DST_C - 1u); }
  // Function-scope variables start at zero.
  var acc0: array<f32, TM * R>;
  var acc1: array<f32, TM * R>;
  var acc2: array<f32, TM * R>;
  var acc3: array<f32, TM * R>;
  let plane = u32(SRC_H * SRC_W);

#if ${SPREAD}
  // y0 / S is a row of dy (pad 0, one tap); rows y0 + 1 ... y0 + S − 1 keep their zeros.
  let src_row = u.off_src + n * u.channels * plane + (y0 / u32(S)) * u32(SRC_W) + x0 / u32(S);
  for (var c = 0u; c < u.channels; c++) {
    var seg: array<f32, R>;
    for (var r = 0u; r < R; r += u32(S)) {
      let ok = i32((x0 + r) / u32(S)) < SRC_W;
      seg[r] = select(0.0, src[select(0u, src_row + c * plane + r / u32(S), ok)], ok);
    }
    for (var i = 0u; i < TM; i++) {
      let wv = w[w_index(w_rows[i], c, 0u, 0u)];
      for (var r = 0u; r < R; r += u32(S)) { acc0[i * R + r] = fma(wv, seg[r], acc0[i * R + r]); }
    }
  }
#else
  let ix0 = i32(x0) * S - P;
  let img = u.off_src + n * u.channels * plane;
  for (var c = 0u; c < u.channels; c++) {
    for (var t_row = 0u; t_row < IN_ROWS; t_row++) {
      let iy = i32(y0) * S - P + i32(t_row);
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
      // Output row y0 + j reads this input row through its kernel row t_row − j·S.
      row_taps(&acc0, &seg, &w_rows, c, i32(t_row));
#if ${ROW1}
      row_taps(&acc1, &seg, &w_rows, c, i32(t_row) - S);
#endif
#if ${ROW2}
      row_taps(&acc2, &seg, &w_rows, c, i32(t_row) - 2 * S);
#endif
#if ${ROW3}
      row_taps(&acc3, &seg, &w_rows, c, i32(t_row) - 3 * S);
#endif
    }
  }
#endif

  store_row(&acc0, n, m0, y0, x0);
#if ${ROW1}
  store_row(&acc1, n, m0, y0 + 1u, x0);
#endif
#if ${ROW2}
  store_row(&acc2, n, m0, y0 + 2u, x0);
#endif
#if ${ROW3}
  store_row(&acc3, n, m0, y0 + 3u, x0);
#endif
}
