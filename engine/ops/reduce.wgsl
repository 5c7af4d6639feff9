// Reduction of a contiguous input viewed as [outer, R, inner] over R: sum, max, argmax or logsumexp.
// ROW (inner == 1, R > 64): one workgroup per output reads the row with all its threads (coalesced) and
// combines partial results in workgroup memory. Otherwise one thread per output walks R with stride
// `inner`; neighbouring threads read neighbouring addresses, so that walk is coalesced too.
// Ties in argmax go to the lowest index, as in PyTorch and NumPy.

// Uniforms (broadcast.ts): the input viewed as [outer, r, inner] from element off_x; row_width is
// the workgroups (ROW) or invocations (otherwise) per grid row. OUT_T is i32 for argmax, else f32.
const NEG_INF = -3.4e38;
const RED_N = WG;

// Partial result: value (running sum or max) and index (argmax) or running max (logsumexp).
struct Acc { v: f32, i: u32, m: f32 }

fn empty_acc() -> Acc {
#if ${IS_SUM}
  return Acc(0.0, 0u, 0.0);
#else
  return Acc(NEG_INF, 0xffffffffu, NEG_INF);
#endif
}

fn push(a: Acc, val: f32, idx: u32) -> Acc {
#if ${IS_SUM}
  return Acc(a.v + val, 0u, 0.0);
#elif ${IS_LSE}
  // Online logsumexp: keep the running max m and the sum v of exp(x - m).
  let m = max(a.m, val);
  return Acc(a.v * exp(a.m - m) + exp(val - m), 0u, m);
#else
  if (val > a.v || (val == a.v && idx < a.i)) { return Acc(val, idx, 0.0); }
  return a;
#endif
}

#include "reduce"

alias Red = Acc;

fn combine(a: Acc, b: Acc, op: u32) -> Acc {
#if ${IS_SUM}
  return Acc(a.v + b.v, 0u, 0.0);
#elif ${IS_LSE}
  let m = max(a.m, b.m);
  if (m == NEG_INF) { return a; }
  return Acc(a.v * exp(a.m - m) + b.v * exp(b.m - m), 0u, m);
#else
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) { return b; }
  return a;
#endif
}

fn finish(a: Acc) -> ${OUT_T} {
#if ${IS_ARGMAX}
  return i32(a.i);
#elif ${IS_LSE}
  return a.m + log(a.v);
#else
  return a.v;
#endif
}

#if ${ROW}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * u.row_width;
  if (row >= u.outer) { return; }  // uniform across the workgroup, so barriers stay in uniform control flow
  let base = u.off_x + row * u.r;
  var acc = empty_acc();
  for (var k = lid; k < u.r; k += WG) {
    acc = push(acc, x[base + k], k);
  }
  let total = reduce_group(acc, lid, lid, 0u);
  if (lid == 0u) { out[row] = finish(total); }
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x + gid.y * u.row_width;
  if (o >= u.outer * u.inner) { return; }
  let i = o % u.inner;
  let base = u.off_x + (o / u.inner) * u.r * u.inner + i;
  var acc = empty_acc();
  for (var k = 0u; k < u.r; k++) {
    acc = push(acc, x[base + k * u.inner], k);
  }
  out[o] = finish(acc);
}
#endif
