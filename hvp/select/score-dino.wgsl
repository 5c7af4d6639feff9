// DINO / iBOT scoring, step 2: each combination's score from the cross-entropy table ce [B, G, Vs]
// (score-dino-ce.wgsl; entry (b, t, v) = CE(q_t, log p_v) of sample b, teacher global t and student
// view v). One thread per (sample b, combination c): with the table row [gA, gB, v_2, ..] (student
// view indices; the first G student views are the teacher's globals),
//   s_b(c) = w_cls · Σ_{t ∈ {gA, gB}} Σ_{v in the row or in [always_from, always_to), v ≠ t} ce[b, t, v]
// where [always_from, always_to) are student views every combination keeps (iBOT's locals; empty for
// DINO). PATCH (iBOT) adds w_patch · (patch[gA, b] + patch[gB, b]), the per-image masked patch CE.

#include "grid"
#include "select/table"
#include "select/pair"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = pair_of(gid);
  if (p.b >= u.batch) { return; }
  var acc = 0.0;
  for (var s = 0u; s < 2u; s++) {
    let t = table_entry(p.c, s, u.globals);
    let base = u.off_ce + (p.b * u.globals + t) * u.student_views;
    for (var k = 0u; k < u.cols; k++) {
      let v = table_entry(p.c, k, u.student_views);
      if (v != t) { acc += ce[base + v]; }
    }
    for (var v = u.always_from; v < u.always_to; v++) {
      if (v != t) { acc += ce[base + v]; }
    }
  }
  var score = u.w_cls * acc;
#if ${PATCH}
  let ga = table_entry(p.c, 0u, u.globals);
  let gb = table_entry(p.c, 1u, u.globals);
  score += u.w_patch * (patch_ce[u.off_patch_ce + ga * u.batch + p.b] + patch_ce[u.off_patch_ce + gb * u.batch + p.b]);
#endif
  out[p.o] = score;
}
