// Augmented views, passes 2 and 3: torchvision's gaussian_blur split into a horizontal and a vertical
// 1-D pass (the 2-D kernel is their outer product), reflect padding. The kernel weights come
// precomputed per view in its record. The vertical pass also solarises and normalises, so pass 1
// (render.wgsl) stops at [0, 1] pixels when some view of the batch is blurred. Views drawn without blur
// are copied through.
// Each thread blurs SPAN consecutive values of one line (a row, or a column in the vertical pass) from
// a window of SPAN + KSIZE - 1 loads kept in registers: KSIZE = 23 at 224 px would otherwise cost 23
// loads per value, and on lavapipe (loads are per-lane gathers) those loads were 80% of the time.
// Neighbouring threads take neighbouring lines, so on GPUs the vertical pass reads coalesced.

#include "views/record"

const SPAN = ${SPAN}u;
const C = ${CHANNELS}u;
const KSIZE = ${KSIZE}u;
const RADIUS = i32(KSIZE / 2u);
const WINDOW = SPAN + KSIZE - 1u;

/**
 * Reflect padding without repeating the edge (…, 2, 1 | 0, 1, 2, …); exact for the taps of values
 * inside the view since the radius is < size, clamped beyond (loads for the tail segment's unused slots).
 */
fn reflect(t: i32) -> u32 {
  let n = i32(u.size);
  return u32(clamp(select(select(t, 2 * n - 2 - t, t >= n), -t, t < 0), 0, n - 1));
}

/** Flat index of the value at position `along` of line `line` in plane `plane`. */
fn at(plane: u32, line: u32, along: u32) -> u32 {
#if ${VERTICAL}
  return plane + along * u.size + line;
#else
  return plane + line * u.size + along;
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  if (g >= u.size * u.segments) { return; }
  let line = g % u.size;
  let first = (g / u.size) * SPAN;
  let vc = gid.z;
  let plane = vc * u.size * u.size;
  let r = (vc / C) * u.stride;
  let c = vc % C;
  let blurred = rec[r + F_SIGMA] != 0u;
  let solarize = rec[r + F_SOLARIZE] != 0u;

  var out: array<f32, SPAN>;
  if (blurred) {
    var w: array<f32, KSIZE>;
    for (var k = 0u; k < KSIZE; k++) { w[k] = bitcast<f32>(rec[r + F_WEIGHTS + k]); }
    var win: array<f32, WINDOW>;
    for (var k = 0u; k < WINDOW; k++) { win[k] = src[at(plane, line, reflect(i32(first + k) - RADIUS))]; }
    for (var o = 0u; o < SPAN; o++) {
      var acc = 0.0;
      for (var k = 0u; k < KSIZE; k++) { acc += w[k] * win[o + k]; }
      out[o] = acc;
    }
  } else {
    for (var o = 0u; o < SPAN; o++) { out[o] = src[at(plane, line, min(first + o, u.size - 1u))]; }
  }
  for (var o = 0u; o < SPAN; o++) {
    if (first + o >= u.size) { break; }
    var val = out[o];
#if ${VERTICAL}
    if (solarize && val >= 0.5) { val = 1.0 - val; }
    val = (val - u.mean[c]) / u.stdev[c];
#endif
    dst[at(plane, line, first + o)] = val;
  }
}
