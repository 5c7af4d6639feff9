// CE_TABLE: ce[b, t, v] = -Σ_k q[t, b, k] · logp[v, b, k], one thread per entry, from the teacher
// probabilities q [G, B, K] and student log-probabilities logp [Vs, B, K]. (A batched matmul of
// [B, G, K] by [B, K, Vs] wastes nearly all of its 128×128 output tiles on these 2-4 × 10 products.)
//
// Otherwise: HVP's DINO / iBOT combination scores from the cross-entropy table ce [B, G, Vs] (entry (b, t, v) =
// CE(q_t, log p_v) of sample b, teacher global t and student view v). One thread per (sample b,
// combination c): with the table row [gA, gB, v_2, ..] (student view indices; the first G student
// views are the teacher's globals),
//   s_b(c) = w_cls · Σ_{t ∈ {gA, gB}} Σ_{v in the row or in [always_from, always_to), v ≠ t} ce[b, t, v]
// where [always_from, always_to) are student views every combination keeps (iBOT's locals; empty for
// DINO). PATCH (iBOT) adds w_patch · (patch[gA, b] + patch[gB, b]), the per-image masked patch CE.

struct Params {
  batch: u32,
  globals: u32,
  student_views: u32,
  combos: u32,
  cols: u32,
  ce_off: u32,
  t_off: u32,
  always_from: u32,
  always_to: u32,
  patch_off: u32,
  row_width: u32,  // threads per grid row
  w_cls: f32,
  w_patch: f32,
  dim: u32,        // CE_TABLE: K
}

@group(0) @binding(0) var<uniform> u: Params;
#if ${CE_TABLE}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> logp: array<f32>;
@group(0) @binding(3) var<storage, read_write> ce_out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x + gid.y * u.row_width;
  if (o >= u.batch * u.globals * u.student_views) { return; }
  let v = o % u.student_views;
  let t = (o / u.student_views) % u.globals;
  let b = o / (u.student_views * u.globals);
  let qa = (t * u.batch + b) * u.dim;
  let la = (v * u.batch + b) * u.dim;
  var acc = 0.0;
  for (var k = 0u; k < u.dim; k++) { acc += q[qa + k] * logp[la + k]; }
  ce_out[o] = -acc;
}
#else
@group(0) @binding(1) var<storage, read> ce: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<i32>;
#if ${PATCH}
@group(0) @binding(3) var<storage, read> patch_ce: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif

fn entry(c: u32, col: u32, limit: u32) -> u32 {
  return u32(clamp(table[u.t_off + c * u.cols + col], 0, i32(limit) - 1));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x + gid.y * u.row_width;
  if (o >= u.batch * u.combos) { return; }
  let b = o / u.combos;
  let c = o % u.combos;
  var acc = 0.0;
  for (var s = 0u; s < 2u; s++) {
    let t = entry(c, s, u.globals);
    let base = u.ce_off + (b * u.globals + t) * u.student_views;
    for (var k = 0u; k < u.cols; k++) {
      let v = entry(c, k, u.student_views);
      if (v != t) { acc += ce[base + v]; }
    }
    for (var v = u.always_from; v < u.always_to; v++) {
      if (v != t) { acc += ce[base + v]; }
    }
  }
  var score = u.w_cls * acc;
#if ${PATCH}
  let ga = entry(c, 0u, u.globals);
  let gb = entry(c, 1u, u.globals);
  score += u.w_patch * (patch_ce[u.patch_off + ga * u.batch + b] + patch_ce[u.patch_off + gb * u.batch + b]);
#endif
  out[o] = score;
}
#endif
