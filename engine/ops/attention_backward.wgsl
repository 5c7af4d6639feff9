// Fused attention backward (FlashAttention-2): probabilities are recomputed from the forward's saved
// logsumexp, so nothing of size N×N reaches global memory, and each gradient has one writer (no
// atomics). One template, two kernels that differ by which rows a workgroup owns:
//   DKDV false: owns query rows i and streams key/value rows j. Writes dQ and delta_i = Σ dO_i·O_i,
//               which the second kernel needs (this one computes it because it holds dO_i anyway).
//   DKDV true:  owns key rows j and streams query/dO rows i (with their lse and delta). Writes dK, dV.
// In roles: own rows a, b (registers), streamed rows x, y (workgroup memory). Per pair,
//   s = a·x (a pre-scaled by scale·log2 e)   dp = b·y   p = exp2(s − lse·log2 e)   ds = p·(dp − delta)
//   dQ kernel:  a = q, b = dO, x = k, y = v;  acc0 += ds·x                  (dQ = scale·dS·K)
//   dKV kernel: a = k, b = v, x = q, y = dO;  acc0 += ds·x, acc1 += p·y     (dK = scale·dSᵀ·Q, dV = Pᵀ·dO)
// Invocation layout (TM rows each, split by columns among PARTS), the two passes per block (partial
// sums to workgroup memory, then their totals) and the loops left rolled are as in attention.wgsl.
// Inputs: 1 a, 2 b, 3 x, 4 y (contiguous [BH, N, D], at their offsets), 5 lse [BH, Nq], 6 out (dQ
// kernel, for delta) or delta (dKV kernel). Outputs: 7, 8 = dQ, delta or dK, dV.

// Uniforms (attention.ts): n_own, n_str rows; bh, grid_y as in attention.wgsl; the kernel API's off_a, off_b, off_x,
// off_y (in f32s); scale_log2 = scale · log2(e) and scale.

const LOG2E = 1.4426950408889634;

#include "attention"

#if ${DKDV}
var<workgroup> lse_tile: array<f32, BS>;    // lse·log2 e of the streamed query rows
var<workgroup> delta_tile: array<f32, BS>;
#endif

// Row vec4 loads and stores of the owned rows, as the streamed ones' (ld_x, ld_y).
#if ${VEC_IO}
fn ld_a(i: u32, col: u32) -> vec4<f32> { return mask4(a[i / 4u], col); }
fn ld_b(i: u32, col: u32) -> vec4<f32> { return mask4(b[i / 4u], col); }
fn st_grad(i: u32, col: u32, g0: vec4<f32>, g1: vec4<f32>) {
  if (col < D) {
    grad0[i / 4u] = g0;
#if ${DKDV}
    grad1[i / 4u] = g1;
#endif
  }
}
#else
fn ld_a(i: u32, col: u32) -> vec4<f32> { return mask4(vec4<f32>(a[i], a[i + 1u], a[i + 2u], a[i + 3u]), col); }
fn ld_b(i: u32, col: u32) -> vec4<f32> { return mask4(vec4<f32>(b[i], b[i + 1u], b[i + 2u], b[i + 3u]), col); }
fn st_grad(i: u32, col: u32, g0: vec4<f32>, g1: vec4<f32>) {
  for (var t = 0u; t < 4u; t++) {
    if (col + t < D) {
      grad0[i + t] = g0[t];
#if ${DKDV}
      grad1[i + t] = g1[t];
#endif
    }
  }
}
#endif
#if ${DKDV}
#else
#if ${VEC_IO}
fn ld_o(i: u32, col: u32) -> vec4<f32> { return mask4(o[i / 4u], col); }
#else
fn ld_o(i: u32, col: u32) -> vec4<f32> { return mask4(vec4<f32>(o[i], o[i + 1u], o[i + 2u], o[i + 3u]), col); }
#endif
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = head_of(wid);
  if (bh >= u.bh) { return; }  // uniform across the workgroup, so barriers stay in uniform control flow
  let at = slot_of(wid, lid);
  let own_head = bh * u.n_own;

  var ar: array<vec4<f32>, TM * DC>;
  var br: array<vec4<f32>, TM * DC>;
  var acc0: array<vec4<f32>, TM * DC>;
#if ${DKDV}
  var acc1: array<vec4<f32>, TM * DC>;
#else
  var delta_part = vec4<f32>(0.0);  // .x, .y: rows 0, 1
#endif
  for (var t = 0u; t < TM; t++) {
    let row = at.row0 + t * RT;
    for (var c = 0u; c < DC; c++) {
      let col = (at.h * DC + c) * 4u;
      let i = (own_head + row) * D + col;
      var av = vec4<f32>(0.0);
      var bv = vec4<f32>(0.0);
      if (row < u.n_own) {
        av = ld_a(u.off_a + i, col) * u.scale_log2;
        bv = ld_b(u.off_b + i, col);
#if ${DKDV}
#else
        delta_part[t] += dot(bv, ld_o(i, col));
#endif
      }
      ar[t * DC + c] = av;
      br[t * DC + c] = bv;
      acc0[t * DC + c] = vec4<f32>(0.0);
#if ${DKDV}
      acc1[t * DC + c] = vec4<f32>(0.0);
#endif
    }
  }

#if ${DKDV}
#else
  // delta_i = dO_i·O_i, summed over the row's parts; the part-0 invocation publishes it.
  part[at.h * BS * RT + at.rt] = delta_part;
  workgroupBarrier();
  var own_delta = vec4<f32>(0.0);
  for (var p = 0u; p < PARTS; p++) { own_delta += part[p * BS * RT + at.rt]; }
  workgroupBarrier();
  var own_lse = vec4<f32>(0.0);
  for (var t = 0u; t < TM; t++) {
    let row = at.row0 + t * RT;
    if (row < u.n_own) {
      own_lse[t] = lse[own_head + row] * LOG2E;
      if (at.h == 0u) { delta_out[own_head + row] = own_delta[t]; }
    }
  }
#endif

  let str_base = bh * u.n_str * D;
  for (var j0 = 0u; j0 < u.n_str; j0 += BS) {
    stage_block(lid, j0, u.n_str, str_base, u.off_x, u.off_y);
#if ${DKDV}
    for (var e = lid; e < BS; e += THREADS) {
      let j = j0 + e;
      lse_tile[e] = 0.0;
      delta_tile[e] = 0.0;
      if (j < u.n_str) {
        lse_tile[e] = lse[bh * u.n_str + j] * LOG2E;
        delta_tile[e] = delta[bh * u.n_str + j];
      }
    }
#endif
    workgroupBarrier();

    // Pass 1: partial (s, dp) of streamed row j0 + j against own rows 0 and 1.
    let nj = min(BS, u.n_str - j0);
    for (var j = 0u; j < nj; j++) {
      var v4 = vec4<f32>(0.0);
      for (var c = 0u; c < DC; c++) {
        let xc = x_tile[j * D4 + at.h * DC + c];
        let yc = y_tile[j * D4 + at.h * DC + c];
        for (var t = 0u; t < TM; t++) {
          v4[2u * t] += dot(ar[t * DC + c], xc);
          v4[2u * t + 1u] += dot(br[t * DC + c], yc);
        }
      }
      part[(at.h * BS + j) * RT + at.rt] = v4;
    }
    workgroupBarrier();

    // Pass 2: full (s, dp) summed over the parts, then p, ds and the accumulators.
    for (var j = 0u; j < nj; j++) {
      var sd = vec4<f32>(0.0);
      for (var p = 0u; p < PARTS; p++) { sd += part[(p * BS + j) * RT + at.rt]; }
      var pr = vec2<f32>(0.0);  // p of rows 0, 1
      var ds = vec2<f32>(0.0);
      for (var t = 0u; t < TM; t++) {
#if ${DKDV}
        pr[t] = exp2(sd[2u * t] - lse_tile[j]);
        ds[t] = pr[t] * (sd[2u * t + 1u] - delta_tile[j]);
#else
        pr[t] = exp2(sd[2u * t] - own_lse[t]);
        ds[t] = pr[t] * (sd[2u * t + 1u] - own_delta[t]);
#endif
      }
      for (var c = 0u; c < DC; c++) {
        let xc = x_tile[j * D4 + at.h * DC + c];
#if ${DKDV}
        let yc = y_tile[j * D4 + at.h * DC + c];
#endif
        for (var t = 0u; t < TM; t++) {
          acc0[t * DC + c] = fma(vec4<f32>(ds[t]), xc, acc0[t * DC + c]);
#if ${DKDV}
          acc1[t * DC + c] = fma(vec4<f32>(pr[t]), yc, acc1[t * DC + c]);
#endif
        }
      }
    }
    workgroupBarrier();
  }

  for (var t = 0u; t < TM; t++) {
    let row = at.row0 + t * RT;
    if (row >= u.n_own) { break; }
    for (var c = 0u; c < DC; c++) {
      let col = (at.h * DC + c) * 4u;
#if ${DKDV}
      st_grad((own_head + row) * D + col, col, acc0[t * DC + c] * u.scale, acc1[t * DC + c]);
#else
      st_grad((own_head + row) * D + col, col, acc0[t * DC + c] * u.scale, vec4<f32>(0.0));
#endif
    }
  }
}
