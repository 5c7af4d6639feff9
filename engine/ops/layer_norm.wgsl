// Layer normalisation over the last axis of a contiguous [rows, D] input (nn.LayerNorm), three modes:
//   FORWARD:    mean, then Σ(x - mean)² in a second pass over the row (exact for rows with a large
//               offset), y = x̂·w + b; saves mean and rstd per row.
//   BACKWARD_X: with ĝ = g·w, dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)).
//   Both: TPR threads per row, WG / TPR rows per workgroup (engine/ops/row-layout.ts picks TPR from D:
//   enough threads to cover a ViT row, none idle on short rows). TPR = 1 (a CPU adapter) is a thread
//   per row with no workgroup memory and no barriers, which a CPU runs as plain loops; wider rows sum
//   their threads' partials in workgroup memory.
//   BACKWARD_W: column partial sums of g·x̂ and g over a chunk of CHUNK rows, one thread per column
//               (neighbouring threads read neighbouring addresses); the chunks are summed afterwards.
// Uniforms (layer-norm.ts): row_width is the workgroups per grid row (FORWARD, BACKWARD_X); off_* are
// where x, g, w and b start. Bindings: FORWARD reads x (and w, b when HAS_W, HAS_B) and writes out,
// mean_out, rstd_out; the backward passes read x, g, mean, rstd (BACKWARD_X: and w) and write out.

const TPR = ${TPR}u;
const RED_N = TPR;
const CHUNK = ${CHUNK}u;

#include "rows"
#include "reduce"

alias Red = vec2<f32>;

fn combine(a: vec2<f32>, b: vec2<f32>, op: u32) -> vec2<f32> {
  return a + b;
}

/** Sum of v over the TPR threads of this thread's row (t: its index within the row). */
fn sum_row(v: vec2<f32>, lid: u32, t: u32) -> vec2<f32> {
#if ${SHARED}
  return reduce_group(v, lid, t, 0u);
#else
  return v;
#endif
}

#include "affine"

#if ${BACKWARD_W}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  if (col >= u.d) { return; }
  let chunk = gid.y;
  var acc = vec2(0.0, 0.0);  // (Σ g·x̂, Σ g)
  for (var r = chunk * CHUNK; r < min(u.rows, (chunk + 1u) * CHUNK); r++) {
    let j = r * u.d + col;
    let gv = g[u.off_g + j];
    acc += vec2(gv * (x[u.off_x + j] - mean[r]) * rstd[r], gv);
  }
  // Partials laid out [chunks, 2, D]: row 0 of each chunk is dWeight's, row 1 dBias's.
  out[(chunk * 2u) * u.d + col] = acc.x;
  out[(chunk * 2u + 1u) * u.d + col] = acc.y;
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let slot = row_slot(wid, lid, u.rows);
  let row = slot.row;
  let t = slot.t;
  let live = slot.live;
  let base = row * u.d;
  let n = f32(u.d);
#if ${FORWARD}
  var s = 0.0;
  for (var k = t; k < u.d; k += TPR) { s += x[u.off_x + base + k]; }
  let mu = sum_row(vec2(s, 0.0), lid, t).x / n;
  // Corrected two-pass variance: Σd² - (Σd)²/n removes the rounding error left in mu.
  var acc = vec2(0.0, 0.0);
  for (var k = t; k < u.d; k += TPR) {
    let dv = x[u.off_x + base + k] - mu;
    acc += vec2(dv * dv, dv);
  }
  let v = sum_row(acc, lid, t);
  let rs = inverseSqrt(max(v.x - v.y * v.y / n, 0.0) / n + u.eps);
  if (!live) { return; }
  for (var k = t; k < u.d; k += TPR) {
    var y = (x[u.off_x + base + k] - mu) * rs * weight(k);
#if ${HAS_B}
    y += b[u.off_b + k];
#endif
    out[base + k] = y;
  }
  if (t == 0u) {
    mean_out[row] = mu;
    rstd_out[row] = rs;
  }
#else
  let mu = mean[row];
  let rs = rstd[row];
  var acc = vec2(0.0, 0.0);  // (Σ ĝ, Σ ĝ·x̂)
  for (var k = t; k < u.d; k += TPR) {
    let gh = g[u.off_g + base + k] * weight(k);
    acc += vec2(gh, gh * (x[u.off_x + base + k] - mu) * rs);
  }
  let m = sum_row(acc, lid, t) / n;
  if (!live) { return; }
  for (var k = t; k < u.d; k += TPR) {
    let gh = g[u.off_g + base + k] * weight(k);
    let xh = (x[u.off_x + base + k] - mu) * rs;
    out[base + k] = rs * (gh - m.x - xh * m.y);
  }
#endif
}
#endif
