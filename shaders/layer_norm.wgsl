// Layer normalisation over the last axis of a contiguous [rows, D] input (nn.LayerNorm), three modes:
//   FORWARD:    one workgroup per row: mean, then Σ(x - mean)² in a second pass over the row (exact
//               for rows with a large offset), y = x̂·w + b; saves mean and rstd per row.
//   BACKWARD_X: one workgroup per row: with ĝ = g·w, dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)).
//   BACKWARD_W: column partial sums of g·x̂ and g over a chunk of CHUNK rows, one thread per column
//               (neighbouring threads read neighbouring addresses); the chunks are summed afterwards.
// Bindings that depend on the affine flags are numbered by the caller (B_* defines).

struct Params {
  rows: u32,
  d: u32,
  row_width: u32,  // workgroups per grid row (FORWARD, BACKWARD_X)
  eps: f32,
  off_x: u32,
  off_g: u32,
  off_w: u32,
  off_b: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if ${FORWARD}
#if ${HAS_W}
@group(0) @binding(${B_W}) var<storage, read> w: array<f32>;
#endif
#if ${HAS_B}
@group(0) @binding(${B_B}) var<storage, read> b: array<f32>;
#endif
@group(0) @binding(${B_OUT}) var<storage, read_write> out: array<f32>;
@group(0) @binding(${B_MEAN}) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(${B_RSTD}) var<storage, read_write> rstd_out: array<f32>;
#else
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
#if ${HAS_W}
@group(0) @binding(${B_W}) var<storage, read> w: array<f32>;
#endif
@group(0) @binding(${B_OUT}) var<storage, read_write> out: array<f32>;
#endif

const WG = 256u;
const CHUNK = ${CHUNK}u;

var<workgroup> partial: array<vec2<f32>, WG>;

fn sum_wg(v: vec2<f32>, lid: u32) -> vec2<f32> {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier();  // everyone has read the result before the next call overwrites it
  return r;
}

fn weight(k: u32) -> f32 {
#if ${HAS_W}
  return w[u.off_w + k];
#else
  return 1.0;
#endif
}

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
  let row = wid.x + wid.y * u.row_width;
  if (row >= u.rows) { return; }  // uniform across the workgroup: barriers stay legal
  let base = row * u.d;
  let n = f32(u.d);
#if ${FORWARD}
  var s = 0.0;
  for (var k = lid; k < u.d; k += WG) { s += x[u.off_x + base + k]; }
  let mu = sum_wg(vec2(s, 0.0), lid).x / n;
  // Corrected two-pass variance: Σd² - (Σd)²/n removes the rounding error left in mu.
  var acc = vec2(0.0, 0.0);
  for (var k = lid; k < u.d; k += WG) {
    let dv = x[u.off_x + base + k] - mu;
    acc += vec2(dv * dv, dv);
  }
  let t = sum_wg(acc, lid);
  let rs = inverseSqrt(max(t.x - t.y * t.y / n, 0.0) / n + u.eps);
  for (var k = lid; k < u.d; k += WG) {
    var y = (x[u.off_x + base + k] - mu) * rs * weight(k);
#if ${HAS_B}
    y += b[u.off_b + k];
#endif
    out[base + k] = y;
  }
  if (lid == 0u) {
    mean_out[row] = mu;
    rstd_out[row] = rs;
  }
#else
  let mu = mean[row];
  let rs = rstd[row];
  var acc = vec2(0.0, 0.0);  // (Σ ĝ, Σ ĝ·x̂)
  for (var k = lid; k < u.d; k += WG) {
    let gh = g[u.off_g + base + k] * weight(k);
    acc += vec2(gh, gh * (x[u.off_x + base + k] - mu) * rs);
  }
  let t = sum_wg(acc, lid) / n;
  for (var k = lid; k < u.d; k += WG) {
    let gh = g[u.off_g + base + k] * weight(k);
    let xh = (x[u.off_x + base + k] - mu) * rs;
    out[base + k] = rs * (gh - t.x - xh * t.y);
  }
#endif
}
#endif
