// The bench's bandwidth reference: dst[i] = src[i] over vec4 words, nothing else per element (no
// strides, no offsets), so its GB/s is what a load and a store of each byte cost on the adapter.

#include "grid"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n4) { return; }
  dst[i] = src[i];
}
