// Broadcasting elementwise map over up to three f32 inputs, any of them strided (views, broadcasts as
// stride 0). EXPR is an f32 expression of a, b, c (the inputs at this index) and s (four scalars).
// The launcher merges axes that every operand walks alike first (engine/ops/map.ts), so a contiguous
// op reaches here with rank 1 and runs without index math (STRIDED false): that is the common case
// inside a network and keeps these kernels memory-bound rather than ALU-bound.
//
// VEC: each invocation makes four outputs along the innermost axis. An input whose innermost stride
// is 1 is read as one vec4 (T<k> = vec4<f32>, its offset and outer strides counted in vec4s); one whose
// innermost stride is 0 (a per-row or per-channel broadcast, a scalar tensor) is read once and splat
// (T<k> = f32). Moving 16 bytes per load and store is what brings a copy-like op to the adapter's
// bandwidth; the launcher picks VEC only when the innermost axis and every vec4 input's offset and
// outer strides are multiples of 4 (a tail past the last whole vec4 lands in the fresh output's padding,
// as pool buffers are multiples of 64 bytes).

// The uniforms (n: invocations that do work; row_width: threads per grid row; chunks: STRIDED,
// invocations per row; s: the four scalars; off, shape, str0..2: offsets, merged shape and each
// input's strides) and the bindings in0..in2 (those given), out are declared in engine/ops/map.ts.

#if ${VEC}
alias V = vec4<f32>;
#else
alias V = f32;
#endif

#include "grid"

const CHUNK = ${CHUNK}u;

// Only the strided variant takes the addressing code: the contiguous one, the common case, compiles
// without it.
#if ${STRIDED}
#include "strided"

fn strides_at(d: u32) -> vec4<u32> {
  return vec4(dim_of(u.str0, d), dim_of(u.str1, d), dim_of(u.str2, d), 0u);
}
#endif

fn f(a: f32, b: f32, c: f32, s: vec4<f32>) -> f32 {
  return ${EXPR};
}

fn store(o: u32, i0: u32, i1: u32, i2: u32) {
  var a = V(0.0);
  var b = V(0.0);
  var c = V(0.0);
#if ${HAS_IN0}
  a = V(in0[i0]);
#endif
#if ${HAS_IN1}
  b = V(in1[i1]);
#endif
#if ${HAS_IN2}
  c = V(in2[i2]);
#endif
#if ${VEC}
  out[o] = vec4(f(a.x, b.x, c.x, u.s), f(a.y, b.y, c.y, u.s), f(a.z, b.z, c.z, u.s), f(a.w, b.w, c.w, u.s));
#else
  out[o] = f(a, b, c, u.s);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
#if ${STRIDED}
  // Invocation i makes CHUNK consecutive units of one row (a row: the innermost axis), so the integer
  // divisions that locate the row, which a CPU adapter runs one lane at a time, are paid once per
  // CHUNK units; the outermost axis needs no division since its index is what remains.
  let run = run_of(i);
  let s0 = run.step.x;
  let s1 = run.step.y;
  let s2 = run.step.z;
  for (var j = run.j0; j < min(run.j0 + CHUNK, run.inner); j++) {
    store(run.row * run.inner + j, run.at.x + j * s0, run.at.y + j * s1, run.at.z + j * s2);
  }
#else
  // Rank 1: each input walks with stride 1 or 0.
  store(i, u.off.x + i * u.str0[0].x, u.off.y + i * u.str1[0].x, u.off.z + i * u.str2[0].x);
#endif
}
