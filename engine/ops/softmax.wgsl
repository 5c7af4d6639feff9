// Softmax and log-softmax along one axis of a contiguous tensor viewed as [outer, R, inner], forward
// (BACKWARD false) and backward. TPR threads per row (o, i), WG / TPR rows per workgroup, chosen from
// R by engine/ops/row-layout.ts; a row's threads stride over its R entries (stride `inner`, 1 for the
// last axis). TPR = 1 (a CPU adapter, or an inner axis, where neighbouring rows are neighbouring
// addresses) is a thread per row with no workgroup memory and no barriers. Stable: every exponent is
// taken relative to the row max.
//   forward:   y = exp(x - m) / s            log: y = x - m - log(s)
//   backward:  dx = y * (g - Σ g·y)          log: dx = g - exp(y) * Σ g

// Uniforms (softmax.ts): off_x is where x starts, the input (forward) or the saved output y (backward);
// off_g, the output gradient's start (backward).
const TPR = ${TPR}u;
const RED_N = TPR;
const NEG_INF = -3.4e38;
const MAX = 0u;
const SUM = 1u;

#include "rows"
#include "reduce"

alias Red = f32;

fn combine(a: f32, b: f32, op: u32) -> f32 {
  return select(a + b, max(a, b), op == MAX);
}

/** max or sum (op) of v over the TPR threads of this thread's row (t: its index in the row). */
fn reduce_row(v: f32, lid: u32, t: u32, op: u32) -> f32 {
#if ${SHARED}
  return reduce_group(v, lid, t, op);
#else
  return v;
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let rows = u.outer * u.inner;
  let slot = row_slot(wid, lid, rows);
  let row = slot.row;
  let t = slot.t;
  let live = slot.live;
  let base = (row / u.inner) * u.r * u.inner + row % u.inner;
  let step = TPR * u.inner;
  let end = base + u.r * u.inner;
#if ${BACKWARD}
  var acc = 0.0;
  for (var j = base + t * u.inner; j < end; j += step) {
#if ${LOG}
    acc += g[u.off_g + j];
#else
    acc += g[u.off_g + j] * x[u.off_x + j];
#endif
  }
  let dot = reduce_row(acc, lid, t, SUM);
  if (!live) { return; }
  for (var j = base + t * u.inner; j < end; j += step) {
    let y = x[u.off_x + j];
#if ${LOG}
    out[j] = g[u.off_g + j] - exp(y) * dot;
#else
    out[j] = y * (g[u.off_g + j] - dot);
#endif
  }
#else
  // Max first, then the sum of exponentials: one exp per element, where a running max rescales.
  var m = NEG_INF;
  for (var j = base + t * u.inner; j < end; j += step) { m = max(m, x[u.off_x + j]); }
  m = reduce_row(m, lid, t, MAX);
  var s = 0.0;
  for (var j = base + t * u.inner; j < end; j += step) {
    let e = exp(x[u.off_x + j] - m);
    s += e;
#if ${LOG}
#else
    if (live) { out[j] = e; }
#endif
  }
  s = reduce_row(s, lid, t, SUM);
  if (!live) { return; }
#if ${LOG}
  let ls = log(s);
  for (var j = base + t * u.inner; j < end; j += step) { out[j] = x[u.off_x + j] - m - ls; }
#else
  for (var j = base + t * u.inner; j < end; j += step) { out[j] = out[j] / s; }
#endif
#endif
}
