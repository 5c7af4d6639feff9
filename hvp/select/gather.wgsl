// HVP's training-batch assembly: out row s·B + b = views row (table[choice[b], from + s] - view_off)·B + b,
// each row `row_len` elements (an image C·H·W, or an embedding). One thread per output element moves
// its 32 bits as u32, so f32 and i32 data both pass unchanged. Indices live on the GPU and cannot be
// validated at op creation: choice is clamped into [0, C) and the view into [0, V), so a bad index
// reads a wrong view but never memory outside the tensor.

#include "grid"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = flat_index(gid);
  if (o >= u.n) { return; }
  let r = o / u.row_len;
  let e = o % u.row_len;
  let s = r / u.batch;
  let b = r % u.batch;
  let c = u32(clamp(choice[u.off_choice + b], 0, i32(u.combos) - 1));
  let v = u32(clamp(table[u.off_table + c * u.cols + u.first + s] - u.view_off, 0, i32(u.views) - 1));
  out[o] = src[u.off_src + (v * u.batch + b) * u.row_len + e];
}
