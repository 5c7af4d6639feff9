// 2-D max and average pooling over contiguous NCHW planes, forward and backward, one invocation per
// output element (forward) or per input element (backward).
//
// MAX forward also writes, per output, the flat index ih·W + iw of the element it chose (the first
// maximum in window order; a NaN wins, as in PyTorch). Backward passes are gathers: each input element
// visits the few windows that contain it and sums what they send back (MAX: the windows whose
// argmax is this element; AVG: every window's share), so no two invocations write the same element
// and no atomics are needed.

// Uniforms (pool.ts): total is the elements this dispatch covers, outputs (forward) or inputs
// (backward); include_pad (AVG) divides by the whole window (1) or by its part inside the input (0).
// Bindings: src, then MAX forward writes dst and argmax, MAX backward reads src and argmax into dst.
#include "grid"

// Window of output (oy, ox) in input coordinates, clipped to the input: [y0, y1) × [x0, x1).
struct Window { y0: i32, y1: i32, x0: i32, x1: i32, divisor: f32 }

fn window(oy: u32, ox: u32) -> Window {
  let ys = i32(oy * u.stride) - i32(u.pad);
  let xs = i32(ox * u.stride) - i32(u.pad);
  let y0 = max(ys, 0);
  let x0 = max(xs, 0);
  let y1 = min(ys + i32(u.kh), i32(u.h));
  let x1 = min(xs + i32(u.kw), i32(u.w));
  // With padding at most half the kernel and floor-mode output sizes, a window never extends past
  // the padded input, so PyTorch's count_include_pad divisor is the full kernel area.
  var d = f32(u.kh * u.kw);
  if (u.include_pad == 0u) { d = f32((y1 - y0) * (x1 - x0)); }
  return Window(y0, y1, x0, x1, d);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = flat_index(gid);
  if (e >= u.total) { return; }
#if ${FWD}
  let ohw = u.oh * u.ow;
  let plane = e / ohw;
  let oy = (e % ohw) / u.ow;
  let ox = e % u.ow;
  let base = u.off_src + plane * u.h * u.w;
  let win = window(oy, ox);
#if ${MAX}
  // Padding is -inf: it never wins, and every window holds at least one input element.
  var best = 0.0;
  var at = -1;
  for (var y = win.y0; y < win.y1; y++) {
    for (var x = win.x0; x < win.x1; x++) {
      let i = y * i32(u.w) + x;
      let v = src[base + u32(i)];
      if (at < 0 || v > best || v != v) { best = v; at = i; }
    }
  }
  dst[e] = best;
  argmax[e] = at;
#else
  var s = 0.0;
  for (var y = win.y0; y < win.y1; y++) {
    for (var x = win.x0; x < win.x1; x++) { s += src[base + u32(y) * u.w + u32(x)]; }
  }
  dst[e] = s / win.divisor;
#endif
#else
  // Backward: e is an input element; src is the output gradient [planes, oh, ow].
  let hw = u.h * u.w;
  let plane = e / hw;
  let iy = (e % hw) / u.w;
  let ix = e % u.w;
  // Outputs whose window holds row iy: oy·stride - pad ≤ iy < oy·stride - pad + kh.
  let ry = iy + u.pad;
  let rx = ix + u.pad;
  let oy0 = select(0u, (ry - u.kh) / u.stride + 1u, ry >= u.kh);
  let ox0 = select(0u, (rx - u.kw) / u.stride + 1u, rx >= u.kw);
  let oy1 = min(ry / u.stride + 1u, u.oh);
  let ox1 = min(rx / u.stride + 1u, u.ow);
  let obase = plane * u.oh * u.ow;
  var s = 0.0;
  for (var oy = oy0; oy < oy1; oy++) {
    for (var ox = ox0; ox < ox1; ox++) {
      let o = obase + oy * u.ow + ox;
#if ${MAX}
      if (argmax[o] == i32(iy * u.w + ix)) { s += src[u.off_src + o]; }
#else
      s += src[u.off_src + o] / window(oy, ox).divisor;
#endif
    }
  }
  dst[e] = s;
#endif
}
