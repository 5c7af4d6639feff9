// HVP's SimSiam pair scores for every sample and combination in one dispatch:
//   s_b(i, j) = -½ [cos(p_i, z_j) + cos(p_j, z_i)],  cos(a, c) = a·c / (max(‖a‖, ε)·max(‖c‖, ε)).
// One workgroup per sample b. Its threads first compute the 2V norms ‖p_v‖, ‖z_v‖ once (each pair
// would otherwise recompute four of them), then one thread per combination takes the two dot products
// it needs. p and z are contiguous [V, B, D]; the table is i32 [C, n] whose first two columns are (i, j).

#include "grid"
#include "select/table"

// Norms of p_0..p_{V-1} then z_0..z_{V-1}; MAX_VIEWS is checked on the host.
const MAX_VIEWS = ${MAX_VIEWS}u;
var<workgroup> norms: array<f32, 2u * MAX_VIEWS>;

fn view(c: u32, col: u32) -> u32 {
  return table_entry(c, col, u.views);
}

fn row(v: u32, b: u32) -> u32 {
  return (v * u.batch + b) * u.dim;
}

fn dot_pz(pv: u32, zv: u32, b: u32) -> f32 {
  let a = u.off_p + row(pv, b);
  let c = u.off_z + row(zv, b);
  var acc = 0.0;
  for (var k = 0u; k < u.dim; k++) { acc += p[a + k] * z[c + k]; }
  return acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = flat_index(wid);
  if (b >= u.batch) { return; }  // uniform across the workgroup: the barrier below stays in uniform control flow
  for (var k = lid; k < 2u * u.views; k += WG) {
    let v = k % u.views;
    var acc = 0.0;
    if (k < u.views) {
      let a = u.off_p + row(v, b);
      for (var d = 0u; d < u.dim; d++) { acc += p[a + d] * p[a + d]; }
    } else {
      let a = u.off_z + row(v, b);
      for (var d = 0u; d < u.dim; d++) { acc += z[a + d] * z[a + d]; }
    }
    norms[k] = max(sqrt(acc), u.eps);
  }
  workgroupBarrier();
  for (var c = lid; c < u.combos; c += WG) {
    let i = view(c, 0u);
    let j = view(c, 1u);
    let cij = dot_pz(i, j, b) / (norms[i] * norms[u.views + j]);
    let cji = dot_pz(j, i, b) / (norms[j] * norms[u.views + i]);
    out[b * u.combos + c] = -0.5 * (cij + cji);
  }
}
