// dst[view] = src for a strided destination view (a slice of a larger tensor): the write half of
// concat and of slice's backward. Both sides are addressed through their own strides.

// Elements are moved as u32 bits whatever the dtype: a float copy may flush subnormals to zero on GPUs
// (WGSL allows it) and would corrupt integer tensors, whose small values are subnormal bit patterns;
// copies (clone, loadStateDict, concat) must be bit-exact.
struct Params {
  n: u32,
  rank: u32,
  row_width: u32,
  _pad: u32,
  off: vec4<u32>,  // x: src offset, y: dst offset
  shape: array<vec4<u32>, 2>,
  src_str: array<vec4<u32>, 2>,
  dst_str: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.row_width;
  if (i >= u.n) { return; }
  var si = u.off.x;
  var di = u.off.y;
  var rem = i;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let size = u.shape[d / 4][d % 4];
    let idx = rem % size;
    rem = rem / size;
    si += idx * u.src_str[d / 4][d % 4];
    di += idx * u.dst_str[d / 4][d % 4];
  }
  dst[di] = src[si];
}
