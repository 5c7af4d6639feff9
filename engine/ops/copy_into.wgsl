// dst[view] = src for a strided destination view (a slice of a larger tensor): the write half of
// concat and of slice's backward, and clone. Both sides are addressed through their own strides,
// after the launcher (engine/ops/view.ts) has merged the axes both walk alike: a contiguous copy
// arrives with rank 1 and runs without index math (STRIDED false).
//
// VEC: each invocation moves one vec4 along the innermost axis (shape, strides and offsets then
// count vec4s): 16 bytes per load and store is what reaches the adapter's copy bandwidth. Chosen
// only when the innermost axis is contiguous on both sides and every offset and outer stride is a
// multiple of 4 elements.

// Elements are moved as u32 bits whatever the dtype: a float copy may flush subnormals to zero on GPUs
// (WGSL allows it) and would corrupt integer tensors, whose small values are subnormal bit patterns;
// copies (clone, loadStateDict, concat) must be bit-exact.
// Uniforms (view.ts): n is the invocations that do work; chunks (STRIDED) the invocations per row,
// ceil(inner / CHUNK); off.x, off.y the source and destination offsets. src and dst are arrays of
// vec4<u32> with VEC, else of u32.
#include "grid"

const CHUNK = ${CHUNK}u;

// Only the strided variant takes the addressing code: the contiguous one, the common case, compiles
// without it.
#if ${STRIDED}
#include "strided"

fn strides_at(d: u32) -> vec4<u32> {
  return vec4(dim_of(u.src_str, d), dim_of(u.dst_str, d), 0u, 0u);
}
#endif

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
#if ${STRIDED}
  // Invocation i moves CHUNK consecutive units of one row (as in elementwise.wgsl): the row's
  // integer divisions are paid once per CHUNK units, none for the outermost axis.
  let run = run_of(i);
  let si = run.at.x;
  let di = run.at.y;
  let ss = run.step.x;
  let ds = run.step.y;
  for (var j = run.j0; j < min(run.j0 + CHUNK, run.inner); j++) {
    dst[di + j * ds] = src[si + j * ss];
  }
#else
  dst[u.off.y + i * u.dst_str[0].x] = src[u.off.x + i * u.src_str[0].x];
#endif
}
