// Bicubic resize of [N, C, H, W] (PyTorch's upsample_bicubic2d, align_corners = False), two modes:
//   FORWARD:  one invocation per output pixel: 4×4 taps of the (strided) input, out[o] = Σ wy·wx·x.
//   BACKWARD: one invocation per input pixel, a gather: it visits the output pixels whose taps can
//             land on it and sums wy·wx·g, recomputing the same tap weights as the forward. Each
//             invocation writes only its own element, so no atomics (WGSL has none for f32) and a
//             deterministic summation order.
// Output pixel o samples the input at s = ratio·(o + 0.5) − 0.5, where ratio is in/out, or
// 1/scale_factor when the caller gave one (PyTorch's area_pixel_compute_scale). The taps are
// floor(s) − 1 .. floor(s) + 2, clamped to the border, with Keys' cubic convolution weights, A = −0.75.

// Uniforms (interpolate.ts): n is the invocations, output elements (FORWARD) or input elements
// (BACKWARD); src_stride the strides (N, C, H, W) of the tensor read, x (FORWARD) or g (BACKWARD).
#include "grid"

const A = -0.75;

// Weights of the taps at distances 1 + t, t, 1 − t, 2 − t from the sample point.
fn cubic_weights(t: f32) -> vec4<f32> {
  let near = vec2<f32>(t, 1.0 - t);
  let far = vec2<f32>(1.0 + t, 2.0 - t);
  let wn = ((A + 2.0) * near - (A + 3.0)) * near * near + 1.0;
  let wf = ((A * far - 5.0 * A) * far + 8.0 * A) * far - 4.0 * A;
  return vec4<f32>(wf.x, wn.x, wn.y, wf.y);
}

fn source_index(o: u32, ratio: f32) -> f32 {
  return ratio * (f32(o) + 0.5) - 0.5;
}

fn base_index(s: f32) -> i32 {
  return i32(floor(s));
}

/**
 * Element i of a contiguous [N, C, h, w] walk (the output in FORWARD, the input in BACKWARD): its
 * column and row, and where its (n, c) plane starts in src, the tensor read through its strides.
 */
struct Pixel {
  x: u32,
  y: u32,
  plane: u32,
}

fn pixel(i: u32, h: u32, w: u32) -> Pixel {
  let nc = i / (w * h);
  return Pixel(i % w, (i / w) % h, u.off_src + (nc / u.channels) * u.src_stride.x + (nc % u.channels) * u.src_stride.y);
}

fn tap(b: i32, j: i32, size: u32) -> u32 {
  return u32(clamp(b - 1 + j, 0, i32(size) - 1));
}

#if ${FORWARD}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
  let o = pixel(i, u.out_h, u.out_w);
  let base = o.plane;
  let sy = source_index(o.y, u.ratio_h);
  let sx = source_index(o.x, u.ratio_w);
  let by = base_index(sy);
  let bx = base_index(sx);
  let wy = cubic_weights(sy - f32(by));
  let wx = cubic_weights(sx - f32(bx));
  var acc = 0.0;
  for (var r = 0; r < 4; r++) {
    let row = base + tap(by, r, u.in_h) * u.src_stride.z;
    var line = 0.0;
    for (var c = 0; c < 4; c++) {
      line += wx[c] * src[row + tap(bx, c, u.in_w) * u.src_stride.w];
    }
    acc += wy[r] * line;
  }
  dst[i] = acc;
}
#else
// Total weight with which output pixel o reads input pixel i along one axis (several taps of a border
// pixel clamp onto the same input pixel).
fn weight_of(o: u32, i: u32, ratio: f32, size: u32) -> f32 {
  let s = source_index(o, ratio);
  let b = base_index(s);
  let w = cubic_weights(s - f32(b));
  var total = 0.0;
  for (var j = 0; j < 4; j++) {
    total += select(0.0, w[j], tap(b, j, size) == i);
  }
  return total;
}

// Output pixels [lo, hi) that may read input pixel i: an interior tap hits i when floor(s) lies in
// [i − 2, i + 1], i.e. s in [i − 2, i + 2); one pixel of margin on each side absorbs f32 rounding of
// this inversion, and the border pixels also collect every clamped tap beyond them.
fn output_range(i: u32, ratio: f32, size: u32, out_size: u32) -> vec2<u32> {
  var lo = 0u;
  var hi = out_size;
  if (i > 0u) {
    lo = u32(max(floor((f32(i) - 1.5) / ratio - 0.5) - 1.0, 0.0));
  }
  if (i + 1u < size) {
    hi = min(u32(max(ceil((f32(i) + 2.5) / ratio - 0.5) + 1.0, 0.0)), out_size);
  }
  return vec2<u32>(lo, hi);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
  let p = pixel(i, u.in_h, u.in_w);
  let ix = p.x;
  let iy = p.y;
  let base = p.plane;
  let ry = output_range(iy, u.ratio_h, u.in_h, u.out_h);
  let rx = output_range(ix, u.ratio_w, u.in_w, u.out_w);
  var acc = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    let wy = weight_of(oy, iy, u.ratio_h, u.in_h);
    if (wy == 0.0) { continue; }
    let row = base + oy * u.src_stride.z;
    var line = 0.0;
    for (var ox = rx.x; ox < rx.y; ox++) {
      line += weight_of(ox, ix, u.ratio_w, u.in_w) * src[row + ox * u.src_stride.w];
    }
    acc += wy * line;
  }
  dst[i] = acc;
}
#endif
