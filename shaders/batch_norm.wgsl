// Batch normalisation of a contiguous input viewed as [N, C, S] (S = H·W, or 1 for [N, C]), three modes:
//   STATS:    one workgroup per channel reduces its N·S values in workgroup memory: the mean, then
//             Σ(x - mean)² in a second pass (corrected two-pass, so a channel with a large mean keeps
//             its variance); writes mean and rstd = 1/sqrt(var_biased + eps) and, with UPDATE, moves
//             the running statistics in place (running_var takes the unbiased variance, as PyTorch).
//   REDUCE:   one workgroup per channel: Σ g and Σ g·x̂, i.e. dBias and dWeight, laid out [2, C].
//   APPLY:    one thread per element: y = x̂·w + b (forward) or, with BACKWARD, the input gradient
//             dx = rstd·w·(g - Σg/M - x̂·Σg·x̂/M) in training (TRAIN) and rstd·w·g with fixed statistics.
// Optional buffers are numbered by the caller (B_* defines).

struct Params {
  n: u32,
  c: u32,
  s: u32,
  row_width: u32,  // workgroups (STATS, REDUCE) or threads (APPLY) per grid row
  off_x: u32,
  off_g: u32,
  off_mean: u32,
  off_rstd: u32,
  off_w: u32,
  off_b: u32,
  off_rm: u32,
  off_rv: u32,
  momentum: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if ${STATS}
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;
#if ${UPDATE}
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
#endif
#else
@group(0) @binding(${B_G}) var<storage, read> g: array<f32>;
@group(0) @binding(${B_MEAN}) var<storage, read> mean: array<f32>;
@group(0) @binding(${B_RSTD}) var<storage, read> rstd: array<f32>;
#if ${HAS_W}
@group(0) @binding(${B_W}) var<storage, read> w: array<f32>;
#endif
#if ${HAS_B}
@group(0) @binding(${B_B}) var<storage, read> b: array<f32>;
#endif
#if ${TRAIN}
@group(0) @binding(${B_SUMS}) var<storage, read> sums: array<f32>;
#endif
@group(0) @binding(${B_OUT}) var<storage, read_write> out: array<f32>;
#endif

const WG = 256u;

var<workgroup> partial: array<vec2<f32>, WG>;

fn sum_wg(v: vec2<f32>, lid: u32) -> vec2<f32> {
  partial[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) { partial[lid] += partial[lid + k]; }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier();  // everyone has read the result before the next call overwrites it
  return r;
}

/** Position of the i-th of channel c's N·S values. */
fn at(c: u32, i: u32) -> u32 {
  let n = i / u.s;
  return (n * u.c + c) * u.s + (i - n * u.s);
}

#if ${STATS}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * u.row_width;
  if (c >= u.c) { return; }  // uniform across the workgroup: barriers stay legal
  let m = u.n * u.s;
  var s = 0.0;
  for (var i = lid; i < m; i += WG) { s += x[u.off_x + at(c, i)]; }
  let mu = sum_wg(vec2(s, 0.0), lid).x / f32(m);
  var acc = vec2(0.0, 0.0);  // (Σ d², Σ d) with d = x - mu
  for (var i = lid; i < m; i += WG) {
    let d = x[u.off_x + at(c, i)] - mu;
    acc += vec2(d * d, d);
  }
  let t = sum_wg(acc, lid);
  let sq = max(t.x - t.y * t.y / f32(m), 0.0);  // Σ(x - mean)², rounding of mu removed
  if (lid == 0u) {
    mean[c] = mu + t.y / f32(m);
    rstd[c] = inverseSqrt(sq / f32(m) + u.eps);
#if ${UPDATE}
    let mo = u.momentum;
    running_mean[u.off_rm + c] = (1.0 - mo) * running_mean[u.off_rm + c] + mo * (mu + t.y / f32(m));
    running_var[u.off_rv + c] = (1.0 - mo) * running_var[u.off_rv + c] + mo * sq / f32(m - 1u);
#endif
  }
}
#else

fn weight(c: u32) -> f32 {
#if ${HAS_W}
  return w[u.off_w + c];
#else
  return 1.0;
#endif
}

#if ${REDUCE}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * u.row_width;
  if (c >= u.c) { return; }  // uniform across the workgroup: barriers stay legal
  let mu = mean[u.off_mean + c];
  let rs = rstd[u.off_rstd + c];
  var acc = vec2(0.0, 0.0);
  for (var i = lid; i < u.n * u.s; i += WG) {
    let j = at(c, i);
    let gv = g[u.off_g + j];
    acc += vec2(gv, gv * (x[u.off_x + j] - mu) * rs);
  }
  let t = sum_wg(acc, lid);
  if (lid == 0u) {
    out[c] = t.x;
    out[u.c + c] = t.y;
  }
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.row_width;
  if (i >= u.n * u.c * u.s) { return; }
  let c = (i / u.s) % u.c;
  let rs = rstd[u.off_rstd + c];
#if ${BACKWARD}
  var gv = g[u.off_g + i];
#if ${TRAIN}
  let inv_m = 1.0 / f32(u.n * u.s);
  let xh = (x[u.off_x + i] - mean[u.off_mean + c]) * rs;
  gv -= (sums[c] + xh * sums[u.c + c]) * inv_m;
#endif
  out[i] = rs * weight(c) * gv;
#else
  var y = (x[u.off_x + i] - mean[u.off_mean + c]) * rs * weight(c);
#if ${HAS_B}
  y += b[u.off_b + c];
#endif
  out[i] = y;
#endif
}
#endif
#endif
