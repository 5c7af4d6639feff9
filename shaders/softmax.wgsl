// Softmax and log-softmax along one axis of a contiguous tensor viewed as [outer, R, inner], forward
// (BACKWARD false) and backward. One workgroup per row (o, i); its threads stride over the R entries
// (stride `inner`, 1 for the last axis, which is the coalesced case). Stable: every exponent is taken
// relative to the row max, found in the same pass as the sum by the online rescaling of reduce.wgsl.
//   forward:   y = exp(x - m) / s            log: y = x - m - log(s)
//   backward:  dx = y * (g - Σ g·y)          log: dx = g - exp(y) * Σ g

struct Params {
  outer: u32,
  r: u32,
  inner: u32,
  row_width: u32,  // workgroups per grid row
  off_x: u32,      // x: the input (forward) or the saved output y (backward)
  off_g: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if ${BACKWARD}
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
#endif

const WG = 256u;
const NEG_INF = -3.4e38;

// (running max, sum of exp(x - max)); the backward uses only .y as a plain sum.
var<workgroup> partial: array<vec2<f32>, WG>;

fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
#if ${BACKWARD}
  return vec2(0.0, a.y + b.y);
#else
  let m = max(a.x, b.x);
  return vec2(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
#endif
}

fn reduce_wg(v: vec2<f32>, lid: u32) -> vec2<f32> {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { partial[lid] = merge(partial[lid], partial[lid + s]); }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * u.row_width;
  if (row >= u.outer * u.inner) { return; }  // uniform across the workgroup: barriers stay legal
  let base = (row / u.inner) * u.r * u.inner + row % u.inner;
#if ${BACKWARD}
  var acc = vec2(0.0, 0.0);
  for (var k = lid; k < u.r; k += WG) {
    let j = base + k * u.inner;
#if ${LOG}
    acc.y += g[u.off_g + j];
#else
    acc.y += g[u.off_g + j] * x[u.off_x + j];
#endif
  }
  let dot = reduce_wg(acc, lid).y;
  for (var k = lid; k < u.r; k += WG) {
    let j = base + k * u.inner;
    let y = x[u.off_x + j];
#if ${LOG}
    out[j] = g[u.off_g + j] - exp(y) * dot;
#else
    out[j] = y * (g[u.off_g + j] - dot);
#endif
  }
#else
  var acc = vec2(NEG_INF, 0.0);
  for (var k = lid; k < u.r; k += WG) {
    acc = merge(acc, vec2(x[u.off_x + base + k * u.inner], 1.0));
  }
  let ms = reduce_wg(acc, lid);
  for (var k = lid; k < u.r; k += WG) {
    let j = base + k * u.inner;
    let d = x[u.off_x + j] - ms.x;
#if ${LOG}
    out[j] = d - log(ms.y);
#else
    out[j] = exp(d) / ms.y;
#endif
  }
#endif
}
