// The bench's bandwidth reference: dst[i] = src[i] over vec4 words, nothing else per element (no
// strides, no offsets), so its GB/s is what a load and a store of each byte cost on the adapter.

struct Params {
  n4: u32,         // vec4 words
  row_width: u32,  // invocations per grid row (grid1d split)
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.row_width;
  if (i >= u.n4) { return; }
  dst[i] = src[i];
}
