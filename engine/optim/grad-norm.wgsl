// Gradient norms for clipping, without a readback. PARTIAL: the workgroups of one dispatch
// grid-stride over one gradient and each writes the sum of squares of its share into its own slot
// (a gradient owns `slots` consecutive slots; the unused ones were zeroed). FINISH: combine the slots
// into norms and clip factors min(1, max_norm / (norm + 1e-6)); PER_TENSOR gives one per gradient
// (DINO's clip_gradients), otherwise one global norm over all of them (clip_grad_norm_).
// The factors land after the norms in `stats`, where the scaling kernel (update.wgsl) reads them.

#if ${PARTIAL}
var<workgroup> acc: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var k = wid.x * WG + lid; k < u.n; k += nwg.x * WG) {
    let v = grad[u.off_grad + k];
    s += v * v;
  }
  acc[lid] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    if (lid < h) { acc[lid] += acc[lid + h]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[u.slot + wid.x] = acc[0]; }
}
#else
fn clip_factor(norm: f32) -> f32 {
  return min(1.0, u.max_norm / (norm + 1e-6));
}

#if ${PER_TENSOR}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= u.n) { return; }
  var s = 0.0;
  for (var k = 0u; k < u.slots; k++) { s += partial[t * u.slots + k]; }
  let norm = sqrt(s);
  stats[t] = norm;
  stats[u.n + t] = clip_factor(norm);
}
#else
var<workgroup> acc: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var k = lid; k < u.n * u.slots; k += WG) { s += partial[k]; }
  acc[lid] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    if (lid < h) { acc[lid] += acc[lid + h]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norm = sqrt(acc[0]);
    stats[0] = norm;
    stats[1] = clip_factor(norm);
  }
}
#endif
#endif
