// conv2d as an implicit GEMM C[M, N] = A[M, K] · B[K, N], register-tiled as in matmul.wgsl: each
// invocation accumulates a TM×TN block of C in registers. No im2col buffer exists: the loaders compute
// where each element of B lives in the NCHW activations, or that it is padding. ops/conv.ts sets the
// shape values that give the two loader families (DW or not) their meaning:
//
//   FWD  y  = W · im2col(x)    M = Co, N = batch·OH·OW, K = taps × Ci    A = weight as [Co, KH, KW, Ci]
//   DX   dx = Wᵀ · col(dy)     M = Ci, N = batch·H·W of one stride phase, K = its taps × Co
//                              A = weight as [Ci, KH, KW, Co], B reads dy
//   DW   dW = dy · im2col(x)ᵀ  M = Co, N = Ci·KH·KW, K = batch × pixels (split over grid z), A = dy
//
// K runs over taps (DW: images and pixel rows) in outer loops and over channels (DW: pixels) inside,
// so everything that depends on the tap is computed once per tap, not per element, and every integer
// division happens once per invocation (CPUs have no vector integer division; GPUs emulate it).
//
// STAGED (GPUs): the workgroup stages BK-deep slabs of A and B in workgroup memory, read K-fast for A
// and N-fast for B (coalesced along pixels), and each invocation multiplies its block out of them. A
// slab never straddles a tap (DW: an image); its last channel chunk is padded with zeros, which the
// host keeps small by picking BK (4, 8 or 16) from the channel count.
// Unstaged (CPU adapters such as lavapipe; FWD and DX only, DW is conv2d_grad_weight_cpu.wgsl there):
// workgroup memory is ordinary memory there, so staging only adds copies and barriers (which lavapipe
// implements by switching between coroutines); each invocation reads its rows of A and columns of B
// straight from the buffers instead, with columns interleaved across invocations (col0 + j·WX) so
// that neighbouring lanes read neighbouring pixels.

// Shape values (everything but the batch and the buffer offsets) are template values, ${SRC_W} etc.:
// on CPU adapters ops/conv.ts gives most of them as literals, so each shape gets its own pipeline
// whose index math (a column into image, row and column; strides; padding) is by constants that the
// compiler folds or turns into multiplies; the loop bounds (taps, channels) stay in Params there,
// since fully unrolled loops compile for minutes on lavapipe. A network has a handful of distinct
// shapes. On GPUs all of them read the Params fields of the same names: the staged variant's slab
// loops, once unrolled, also take minutes to compile on lavapipe, and GPUs hide the index math.
// The uniforms are declared in engine/ops/conv.ts (FIELDS, with what each holds); the bindings are
// a, b, bias (optional) and c.
#include "gemm"

// Column p of C and B as digits (i, hh, ww) of the radix (col_mid, col_inner): FWD (image, oh, ow),
// DX (image, row, column of the phase), DW (ci, kh, kw).
struct Digits { i: u32, h: u32, w: u32 }

fn digits(p: u32) -> Digits {
  let t = p / ${COL_INNER};
  return Digits(t / ${COL_MID}, t % ${COL_MID}, p % ${COL_INNER});
}

fn inside(y: i32, x: i32, hmax: u32, wmax: u32) -> bool {
  return u32(y) < hmax && u32(x) < wmax;  // negative values wrap to large u32
}

// C[m, p] goes to out_base(p) + m·out_cstride: NCHW y (FWD), the phase's pixel of dx (DX), or slice z
// of the [split, Co, Ci·KH·KW] partial sums (DW).
fn out_base(p: u32, z: u32) -> u32 {
  let d = digits(p);
  return u.off_c + z * ${SLICE} + d.i * ${OUT_NSTRIDE} + (${OUT_H0} + d.h * ${OUT_STEP}) * ${OUT_ROW} +
    ${OUT_W0} + d.w * ${OUT_STEP};
}

fn store(m: u32, base: u32, value: f32) {
  var v = value;
#if ${HAS_BIAS}
  v += bias[u.off_bias + m];
#endif
  c[base + m * ${OUT_CSTRIDE}] = v;
}

#if ${STAGED}
const BK = ${BK}u;
const THREADS = WX * WY;
// Invocation lid stages slab row lid % BK of A for A_ROWS rows of M. For B it stages one column and
// B_ROWS slab rows (FWD/DX), or one slab row (a pixel) and B_ROWS columns (DW). Needs
// THREADS % BK == 0 and THREADS % BN == 0.
const A_ROWS = BM * BK / THREADS;
const B_ROWS = BK * BN / THREADS;

var<workgroup> a_tile: array<f32, BK * BM>;  // [k][m]
var<workgroup> b_tile: array<f32, BK * BN>;  // [k][n]
var<private> acc: array<f32, TM * TN>;

fn multiply_slab(tx: u32, ty: u32) {
  for (var kk = 0u; kk < BK; kk++) {
    var ar: array<f32, TM>;
    var br: array<f32, TN>;
    for (var i = 0u; i < TM; i++) { ar[i] = a_tile[kk * BM + ty * TM + i]; }
    for (var j = 0u; j < TN; j++) { br[j] = b_tile[kk * BN + tx * TN + j]; }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
      }
    }
  }
}

@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let tx = lid % WX;
  let ty = lid / WX;
  let a_kk = lid % BK;
  let a_m = row0 + lid / BK;
  for (var i = 0u; i < TM * TN; i++) { acc[i] = 0.0; }

#if ${DW}
  // K = (image, chunk of BK pixels): this invocation stages pixel chunk·BK + a_kk of A (dy) and B (x).
  var col_base: array<u32, B_ROWS>;
  var col_h: array<i32, B_ROWS>;
  var col_w: array<i32, B_ROWS>;
  var col_ok: array<bool, B_ROWS>;
  for (var r = 0u; r < B_ROWS; r++) {
    let p = col0 + lid / BK + r * (THREADS / BK);
    let d = digits(p);
    col_base[r] = d.i * ${SRC_H} * ${SRC_W};
    col_h[r] = i32(d.h) - i32(${PAD});
    col_w[r] = i32(d.w) - i32(${PAD});
    col_ok[r] = p < u.n;
  }
  let plane = ${OH} * ${OW};
  let chunks = (plane + BK - 1u) / BK;
  let s_begin = wid.z * u.k_per_slice;
  let s_end = min(u.images * chunks, s_begin + u.k_per_slice);
  var img = s_begin / chunks;
  var chunk = s_begin % chunks;
  var pix = chunk * BK + a_kk;
  var oy = pix / ${OW};
  var ox = pix % ${OW};
  for (var s = s_begin; s < s_end; s++) {
    let pix_ok = pix < plane;
    let a_base = u.off_a + img * ${CO} * plane + pix;
    for (var r = 0u; r < A_ROWS; r++) {
      let m = a_m + r * (THREADS / BK);
      let ok = pix_ok && m < ${M};
      a_tile[a_kk * BM + m - row0] = select(0.0, a[select(0u, a_base + m * plane, ok)], ok);
    }
    let b_base = u.off_b + img * ${KC} * ${SRC_H} * ${SRC_W};
    for (var r = 0u; r < B_ROWS; r++) {
      let y = i32(oy * ${STRIDE}) + col_h[r];
      let x = i32(ox * ${STRIDE}) + col_w[r];
      let ok = pix_ok && col_ok[r] && inside(y, x, ${SRC_H}, ${SRC_W});
      let idx = b_base + col_base[r] + u32(y) * ${SRC_W} + u32(x);
      b_tile[a_kk * BN + lid / BK + r * (THREADS / BK)] = select(0.0, b[select(0u, idx, ok)], ok);
    }
    workgroupBarrier();
    multiply_slab(tx, ty);
    workgroupBarrier();
    // Next chunk of this image (BK pixels on, as step_h rows and step_w columns), or the next image.
    chunk += 1u;
    if (chunk == chunks) {
      chunk = 0u;
      img += 1u;
      pix = a_kk;
      oy = a_kk / ${OW};
      ox = a_kk % ${OW};
    } else {
      pix += BK;
      oy += ${STEP_H};
      ox += ${STEP_W};
      if (ox >= ${OW}) { ox -= ${OW}; oy += 1u; }
    }
  }
#else
  // K = (tap, chunk of BK channels): this invocation stages column b_nn of B for slab rows b_kk + r·THREADS/BN.
  let b_nn = lid % BN;
  let b_kk = lid / BN;
  let p = col0 + b_nn;
  let d = digits(p);
  let col_h = i32(d.h) * ${COL_SCALE} + ${COL_H0};
  let col_w = i32(d.w) * ${COL_SCALE} + ${COL_W0};
  let plane = ${SRC_H} * ${SRC_W};
  let b_base = u.off_b + d.i * ${KC} * plane;
  for (var th = 0u; th < ${TAPS_H}; th++) {
    for (var tw = 0u; tw < ${TAPS_W}; tw++) {
      let y = col_h + ${TAP_SIGN} * i32(th);
      let x = col_w + ${TAP_SIGN} * i32(tw);
      let tap_ok = p < u.n && inside(y, x, ${SRC_H}, ${SRC_W});
      let tap_base = b_base + u32(y) * ${SRC_W} + u32(x);
      let tap = (${TAP_H0} + th * ${TAP_STEP}) * ${KW} + ${TAP_W0} + tw * ${TAP_STEP};
      let a_base = u.off_a + tap * ${KC};
      for (var c0 = 0u; c0 < ${KC}; c0 += BK) {
        for (var r = 0u; r < A_ROWS; r++) {
          let m = a_m + r * (THREADS / BK);
          let ok = c0 + a_kk < ${KC} && m < ${M};
          let idx = a_base + m * ${KH} * ${KW} * ${KC} + c0 + a_kk;
          a_tile[a_kk * BM + m - row0] = select(0.0, a[select(0u, idx, ok)], ok);
        }
        for (var r = 0u; r < B_ROWS; r++) {
          let kk = b_kk + r * (THREADS / BN);
          let ok = tap_ok && c0 + kk < ${KC};
          let idx = tap_base + (c0 + kk) * plane;
          b_tile[kk * BN + b_nn] = select(0.0, b[select(0u, idx, ok)], ok);
        }
        workgroupBarrier();
        multiply_slab(tx, ty);
        workgroupBarrier();
      }
    }
  }
#endif

  for (var j = 0u; j < TN; j++) {
    let p = col0 + tx * TN + j;
    if (p < u.n) {
      let base = out_base(p, wid.z);
      for (var i = 0u; i < TM; i++) {
        let m = row0 + ty * TM + i;
        if (m < ${M}) { store(m, base, acc[i * TN + j]); }
      }
    }
  }
}
#else
@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wid.y * BM + lid.y * TM;
  let col0 = wid.x * BN + lid.x;
  var acc: array<f32, TM * TN>;
  for (var i = 0u; i < TM * TN; i++) { acc[i] = 0.0; }

  // K = (tap, channel). Per tap, each column's source pixel and its bounds test; per channel, loads.
  var col_base: array<u32, TN>;
  var col_h: array<i32, TN>;
  var col_w: array<i32, TN>;
  var col_ok: array<bool, TN>;
  let plane = ${SRC_H} * ${SRC_W};
  for (var j = 0u; j < TN; j++) {
    let p = col0 + j * WX;
    let d = digits(p);
    col_base[j] = u.off_b + d.i * ${KC} * plane;
    col_h[j] = i32(d.h) * ${COL_SCALE} + ${COL_H0};
    col_w[j] = i32(d.w) * ${COL_SCALE} + ${COL_W0};
    col_ok[j] = p < u.n;
  }
  var a_rows: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { a_rows[i] = u.off_a + min(row0 + i, ${M} - 1u) * ${KH} * ${KW} * ${KC}; }
  for (var th = 0u; th < ${TAPS_H}; th++) {
    for (var tw = 0u; tw < ${TAPS_W}; tw++) {
      var tap_base: array<u32, TN>;
      var tap_ok: array<bool, TN>;
      for (var j = 0u; j < TN; j++) {
        let y = col_h[j] + ${TAP_SIGN} * i32(th);
        let x = col_w[j] + ${TAP_SIGN} * i32(tw);
        tap_ok[j] = col_ok[j] && inside(y, x, ${SRC_H}, ${SRC_W});
        tap_base[j] = select(0u, col_base[j] + u32(y) * ${SRC_W} + u32(x), tap_ok[j]);
      }
      let tap = ((${TAP_H0} + th * ${TAP_STEP}) * ${KW} + ${TAP_W0} + tw * ${TAP_STEP}) * ${KC};
      for (var ch = 0u; ch < ${KC}; ch++) {
        var br: array<f32, TN>;
        for (var j = 0u; j < TN; j++) { br[j] = select(0.0, b[tap_base[j] + ch * plane], tap_ok[j]); }
        for (var i = 0u; i < TM; i++) {
          let av = a[a_rows[i] + tap + ch];
          for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(av, br[j], acc[i * TN + j]); }
        }
      }
    }
  }

  for (var j = 0u; j < TN; j++) {
    let p = col0 + j * WX;
    if (p < u.n) {
      let base = out_base(p, wid.z);
      for (var i = 0u; i < TM; i++) {
        let m = row0 + i;
        if (m < ${M}) { store(m, base, acc[i * TN + j]); }
      }
    }
  }
}
#endif
