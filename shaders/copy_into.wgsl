// dst[view] = src for a strided destination view (a slice of a larger tensor): the write half of
// concat and of slice's backward. Both sides are addressed through their own strides.

// T is u32 for integer tensors: copying their bits as f32 could flush small values (denormal patterns) to zero.
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
@group(0) @binding(1) var<storage, read> src: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${T}>;

fn dim(v: array<vec4<u32>, 2>, i: u32) -> u32 {
  return v[i / 4u][i % 4u];
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.row_width;
  if (i >= u.n) { return; }
  var si = u.off.x;
  var di = u.off.y;
  var rem = i;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let size = dim(u.shape, u32(d));
    let idx = rem % size;
    rem = rem / size;
    si += idx * dim(u.src_str, u32(d));
    di += idx * dim(u.dst_str, u32(d));
  }
  dst[di] = src[si];
}
