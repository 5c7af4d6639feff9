// LARS's trust ratio of one parameter w with gradient g, without a readback. PARTIAL: the workgroups
// grid-stride over the parameter and each writes its share of Σw² into slot `wid` and of Σd², with
// d = g + wd·w the decayed update, into slot `slots + wid`. FINISH (one workgroup): the norms and
// q = eta·‖w‖ / ‖d‖, or 1 when either norm is 0 (a zero-initialised layer, a layer without signal),
// written to trust[0], where the LARS update (update.wgsl) reads it.

var<workgroup> acc_w: array<f32, WG>;
var<workgroup> acc_d: array<f32, WG>;

/** Tree-sum both workgroup arrays into their slot 0. */
fn reduce_pair(lid: u32) {
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    if (lid < h) {
      acc_w[lid] += acc_w[lid + h];
      acc_d[lid] += acc_d[lid + h];
    }
    workgroupBarrier();
  }
}

#if ${PARTIAL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  var sw = 0.0;
  var sd = 0.0;
  for (var k = wid.x * WG + lid; k < u.n; k += nwg.x * WG) {
    let w = param[u.off_param + k];
    let d = grad[u.off_grad + k] + u.weight_decay * w;
    sw += w * w;
    sd += d * d;
  }
  acc_w[lid] = sw;
  acc_d[lid] = sd;
  reduce_pair(lid);
  if (lid == 0u) {
    partial[wid.x] = acc_w[0];
    partial[nwg.x + wid.x] = acc_d[0];
  }
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var sw = 0.0;
  var sd = 0.0;
  for (var k = lid; k < u.slots; k += WG) {
    sw += partial[k];
    sd += partial[u.slots + k];
  }
  acc_w[lid] = sw;
  acc_d[lid] = sd;
  reduce_pair(lid);
  if (lid == 0u) {
    let w_norm = sqrt(acc_w[0]);
    let d_norm = sqrt(acc_d[0]);
    trust[0] = select(1.0, u.eta * w_norm / d_norm, w_norm > 0.0 && d_norm > 0.0);
  }
}
#endif
