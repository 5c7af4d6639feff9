// Fused scaled-dot-product attention forward, FlashAttention-2 style: out = softmax(q·kᵀ·scale)·v and
// the per-row logsumexp (for the backward), without the N×N score matrix ever reaching global memory.
// q, k, v, out are contiguous [BH, N, D] (q, k, v at their offsets); lse is [BH, Nq].
//
// A workgroup owns R = RT·TM query rows of one head; key/value rows stream through workgroup memory
// BS at a time. Each invocation owns TM rows (rows rt, rt + RT, ...), so every key/value value it reads
// feeds TM rows; a row is split by columns among PARTS invocations (lid = part·RT + rt: neighbouring
// invocations share a part, so they read the same workgroup addresses). An invocation keeps its
// column slice (DC vec4s) of each row's pre-scaled query and output accumulator in registers.
// Per block, pass 1 writes each invocation's partial scores to workgroup memory; pass 2 sums a key's
// partials over the parts, so every part of a row sees the same full score and updates the running
// max m and sum l (online softmax, key by key: the accumulator is rescaled only when the max grows)
// alike. Scores are in base 2 (q pre-multiplied by scale·log2 e), so each probability is one exp2.
// Loops over a block's keys run to the block's valid length: they are not unrolled, which keeps the
// shader small (lavapipe compiles fully unrolled blocks for tens of seconds).

// Uniforms (attention.ts): n_q, n_k rows; bh heads, grid_y workgroups along y (the head index is
// wid.y + wid.z * grid_y); scale_log2 = scale · log2(e); off_q, off_x, off_y (the kernel API's, in
// f32s). Bindings q, x (keys), y (values), out: arrays of IO_T (vec4<f32> with VEC_IO, else f32); lse: f32.

const NEG_BIG = -3.4e38;
const LN2 = 0.6931471805599453;

#include "attention"

#if ${VEC_IO}
fn ld_q(i: u32, col: u32) -> vec4<f32> { return mask4(q[i / 4u], col); }
fn st_out(i: u32, col: u32, val: vec4<f32>) {
  if (col < D) { out[i / 4u] = val; }
}
#else
fn ld_q(i: u32, col: u32) -> vec4<f32> { return mask4(vec4<f32>(q[i], q[i + 1u], q[i + 2u], q[i + 3u]), col); }
fn st_out(i: u32, col: u32, val: vec4<f32>) {
  for (var t = 0u; t < 4u; t++) {
    if (col + t < D) { out[i + t] = val[t]; }
  }
}
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = head_of(wid);
  if (bh >= u.bh) { return; }  // uniform across the workgroup, so barriers stay in uniform control flow
  let at = slot_of(wid, lid);
  let head = bh * u.n_q;

  var qr: array<vec4<f32>, TM * DC>;
  var acc: array<vec4<f32>, TM * DC>;
  var m: array<f32, TM>;
  var l: array<f32, TM>;
  for (var t = 0u; t < TM; t++) {
    let row = at.row0 + t * RT;
    for (var c = 0u; c < DC; c++) {
      let col = (at.h * DC + c) * 4u;
      var qv = vec4<f32>(0.0);
      if (row < u.n_q) { qv = ld_q(u.off_q + (head + row) * D + col, col) * u.scale_log2; }
      qr[t * DC + c] = qv;
      acc[t * DC + c] = vec4<f32>(0.0);
    }
    m[t] = NEG_BIG;
    l[t] = 0.0;
  }

  let kv_base = bh * u.n_k * D;
  for (var j0 = 0u; j0 < u.n_k; j0 += BS) {
    stage_block(lid, j0, u.n_k, kv_base, u.off_x, u.off_y);
    workgroupBarrier();

    let nj = min(BS, u.n_k - j0);
    for (var j = 0u; j < nj; j++) {
      var sj = vec4<f32>(0.0);
      for (var c = 0u; c < DC; c++) {
        let kc = x_tile[j * D4 + at.h * DC + c];
        for (var t = 0u; t < TM; t++) { sj[t] += dot(qr[t * DC + c], kc); }
      }
      part[(at.h * BS + j) * RT + at.rt] = sj;
    }
    workgroupBarrier();

    for (var j = 0u; j < nj; j++) {
      var sj = vec4<f32>(0.0);
      for (var p = 0u; p < PARTS; p++) { sj += part[(p * BS + j) * RT + at.rt]; }
      var pj = vec4<f32>(0.0);
      for (var t = 0u; t < TM; t++) {
        if (sj[t] > m[t]) {
          let alpha = exp2(m[t] - sj[t]);
          l[t] *= alpha;
          for (var c = 0u; c < DC; c++) { acc[t * DC + c] *= alpha; }
          m[t] = sj[t];
        }
        pj[t] = exp2(sj[t] - m[t]);
        l[t] += pj[t];
      }
      for (var c = 0u; c < DC; c++) {
        let vc = y_tile[j * D4 + at.h * DC + c];
        for (var t = 0u; t < TM; t++) { acc[t * DC + c] = fma(vec4<f32>(pj[t]), vc, acc[t * DC + c]); }
      }
    }
    workgroupBarrier();
  }

  for (var t = 0u; t < TM; t++) {
    let row = at.row0 + t * RT;
    if (row >= u.n_q) { break; }
    let inv = 1.0 / l[t];
    for (var c = 0u; c < DC; c++) {
      let col = (at.h * DC + c) * 4u;
      st_out((head + row) * D + col, col, acc[t * DC + c] * inv);
    }
    if (at.h == 0u) { lse[head + row] = (m[t] + log2(l[t])) * LN2; }
  }
}
