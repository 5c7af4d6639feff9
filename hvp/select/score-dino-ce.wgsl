// DINO / iBOT scoring, step 1: ce[b, t, v] = -Σ_k q[t, b, k] · logp[v, b, k], one thread per entry,
// from the teacher probabilities q [G, B, K] and student log-probabilities logp [Vs, B, K]. (A batched
// matmul of [B, G, K] by [B, K, Vs] wastes nearly all of its 128×128 output tiles on these 2-4 × 10
// products.)

#include "grid"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = flat_index(gid);
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
