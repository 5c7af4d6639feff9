// Broadcasting elementwise map over up to three f32 inputs, any of them strided (views, broadcasts as
// stride 0). EXPR is an f32 expression of a, b, c (the inputs at this index) and s (four scalars).
// When every input is laid out like the output (CONTIG), the index math is skipped: that is the
// common case inside a network and keeps these kernels memory-bound rather than ALU-bound.

struct Params {
  n: u32,
  rank: u32,
  row_width: u32,  // threads per grid row: linear index = gid.x + gid.y * row_width
  _pad: u32,
  s: vec4<f32>,
  off: vec4<u32>,
  shape: array<vec4<u32>, 2>,
  str0: array<vec4<u32>, 2>,
  str1: array<vec4<u32>, 2>,
  str2: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> u: Params;
#if ${IN0}
@group(0) @binding(1) var<storage, read> in0: array<f32>;
#endif
#if ${IN1}
@group(0) @binding(2) var<storage, read> in1: array<f32>;
#endif
#if ${IN2}
@group(0) @binding(3) var<storage, read> in2: array<f32>;
#endif
@group(0) @binding(${OUT_BINDING}) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.row_width;
  if (i >= u.n) { return; }
  var i0 = u.off.x + i;
  var i1 = u.off.y + i;
  var i2 = u.off.z + i;
#if ${STRIDED}
  i0 = u.off.x;
  i1 = u.off.y;
  i2 = u.off.z;
  var rem = i;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let size = u.shape[d / 4][d % 4];
    let idx = rem % size;
    rem = rem / size;
    i0 += idx * u.str0[d / 4][d % 4];
    i1 += idx * u.str1[d / 4][d % 4];
    i2 += idx * u.str2[d / 4][d % 4];
  }
#endif
  let s = u.s;
#if ${IN0}
  let a = in0[i0];
#endif
#if ${IN1}
  let b = in1[i1];
#endif
#if ${IN2}
  let c = in2[i2];
#endif
  out[i] = ${EXPR};
}
