// Augmented views, pass 1: one workgroup per view renders the resized crop (bilinear, align_corners
// False, antialias off), flip, colour jitter in the view's order, grayscale and, when FINAL (no view of
// the batch is blurred), solarise and Normalize. Without FINAL it writes the [0, 1] pixels that
// blur.wgsl blurs.
// Contrast needs the mean grey level of the whole view as it stands when contrast applies, so one
// workgroup renders one view and reduces that mean itself: the whole render stays one dispatch, with
// no pre-pass over the pixels and no extra buffer.


// `pixels`: uint8 CHW, 4 per word, little-endian; `table`: per image its byte offset, height, width;
// `rec`: per view a record (render.ts `packViews`; the F_* offsets come from its layout).
#include "grid"
#include "views/record"

const C = ${CHANNELS}u;
const GRAY = vec3<f32>(0.299, 0.587, 0.114);

var<workgroup> partial: array<f32, WG>;
var<workgroup> view_mean: f32;

struct Source { base: u32, height: u32, width: u32, i: u32, j: u32, h: u32, w: u32, flip: bool }

fn byte_at(e: u32) -> f32 {
  return f32((pixels[e >> 2u] >> ((e & 3u) * 8u)) & 0xffu) / 255.0;
}

fn texel(s: Source, c: u32, y: u32, x: u32) -> f32 {
  return byte_at(s.base + (c * s.height + s.i + y) * s.width + s.j + x);
}

/** PyTorch's upsample_bilinear2d source index: (dst + 0.5)·in/out − 0.5, clamped below at 0. */
fn src_coord(dst: u32, len: u32) -> vec3<f32> {
  let s = max((f32(dst) + 0.5) * (f32(len) / f32(u.size)) - 0.5, 0.0);
  let i0 = min(u32(s), len - 1u);
  return vec3<f32>(f32(i0), f32(min(i0 + 1u, len - 1u)), s - f32(i0));
}

fn sample(s: Source, y: u32, x: u32) -> vec3<f32> {
  let xo = select(x, u.size - 1u - x, s.flip);
  let cy = src_coord(y, s.h);
  let cx = src_coord(xo, s.w);
  var rgb = vec3<f32>(0.0);
  for (var c = 0u; c < C; c++) {
    let top = (1.0 - cx.z) * texel(s, c, u32(cy.x), u32(cx.x)) + cx.z * texel(s, c, u32(cy.x), u32(cx.y));
    let bottom = (1.0 - cx.z) * texel(s, c, u32(cy.y), u32(cx.x)) + cx.z * texel(s, c, u32(cy.y), u32(cx.y));
    rgb[c] = (1.0 - cy.z) * top + cy.z * bottom;
  }
  return rgb;
}

fn gray(rgb: vec3<f32>) -> f32 {
#if ${RGB}
  return dot(GRAY, rgb);
#else
  return rgb.x;
#endif
}

fn blend(a: vec3<f32>, b: vec3<f32>, ratio: f32) -> vec3<f32> {
  return clamp(ratio * a + (1.0 - ratio) * b, vec3<f32>(0.0), vec3<f32>(1.0));
}

/** torchvision's _rgb2hsv, hue shift (mod 1), _hsv2rgb. */
fn shift_hue(rgb: vec3<f32>, shift: f32) -> vec3<f32> {
  let maxc = max(rgb.x, max(rgb.y, rgb.z));
  let minc = min(rgb.x, min(rgb.y, rgb.z));
  let cr = maxc - minc;
  let eqc = maxc == minc;
  let s = cr / select(maxc, 1.0, eqc);
  let d = (maxc - rgb) / select(cr, 1.0, eqc);
  var hh: f32;
  if (maxc == rgb.x) { hh = d.z - d.y; } else if (maxc == rgb.y) { hh = 2.0 + d.x - d.z; } else { hh = 4.0 + d.y - d.x; }
  var h = fract(hh / 6.0 + 1.0) + shift;
  h = h - floor(h);
  let i6 = floor(h * 6.0);
  let f = h * 6.0 - i6;
  let v = maxc;
  let p = clamp(v * (1.0 - s), 0.0, 1.0);
  let q = clamp(v * (1.0 - s * f), 0.0, 1.0);
  let t = clamp(v * (1.0 - s * (1.0 - f)), 0.0, 1.0);
  switch (u32(i6) % 6u) {
    case 0u: { return vec3<f32>(v, t, p); }
    case 1u: { return vec3<f32>(q, v, p); }
    case 2u: { return vec3<f32>(p, v, t); }
    case 3u: { return vec3<f32>(p, q, v); }
    case 4u: { return vec3<f32>(t, p, v); }
    default: { return vec3<f32>(v, p, q); }
  }
}

/** Colour ops at positions [from, to) of the view's jitter order, skipping contrast (applied by main). */
fn jitter_range(r: u32, rgb_in: vec3<f32>, first_op: u32, end_op: u32) -> vec3<f32> {
  var rgb = rgb_in;
  let order = rec[r + F_ORDER];
  for (var k = first_op; k < end_op; k++) {
    let op = (order >> (2u * k)) & 3u;
    let factor = bitcast<f32>(rec[r + F_FACTORS + op]);
    if (op == 0u) {
      rgb = blend(rgb, vec3<f32>(0.0), factor);
    } else if (op == 2u) {
#if ${RGB}
      rgb = blend(rgb, vec3<f32>(gray(rgb)), factor);
#endif
    } else if (op == 3u) {
#if ${RGB}
      rgb = shift_hue(rgb, factor);
#endif
    }
  }
  return rgb;
}

fn store(base: u32, npix: u32, rgb: vec3<f32>) {
  for (var c = 0u; c < C; c++) { out[base + c * npix] = rgb[c]; }
}

fn load(base: u32, npix: u32) -> vec3<f32> {
  var rgb = vec3<f32>(0.0);
  for (var c = 0u; c < C; c++) { rgb[c] = out[base + c * npix]; }
  return rgb;
}

// 16 x 16 threads walk the view in tiles: row and column come without integer division (lane-by-lane
// on lavapipe), and at 224 px every thread gets the same 14 x 14 pixels.
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = flat_index(wid);
  if (v >= u.views) { return; }  // uniform across the workgroup, so the barriers below stay uniform
  let r = v * u.stride;
  let b = v % u.batch;
  let s = Source(table[3u * b], table[3u * b + 1u], table[3u * b + 2u],
                 rec[r + F_CROP], rec[r + F_CROP + 1u], rec[r + F_CROP + 2u], rec[r + F_CROP + 3u],
                 rec[r + F_FLIP] != 0u);
  let jittered = rec[r + F_JITTER] != 0u;
  let npix = u.size * u.size;
  let first = v * C * npix;
  var contrast_at = 0u;
  for (var k = 0u; k < 4u; k++) {
    if (((rec[r + F_ORDER] >> (2u * k)) & 3u) == 1u) { contrast_at = k; }
  }

  // Contrast blends towards the grey mean of the view as it stands when contrast applies: the ops
  // before it run here, their result is parked in `out` (each thread reads back only what it wrote),
  // and the per-thread grey sums are added by one thread (two barriers; a barrier tree costs more
  // than it saves on lavapipe and, for 256 values, on GPUs).
  var acc = 0.0;
  if (jittered) {
    for (var y = lid3.y; y < u.size; y += WG_Y) {
      for (var x = lid3.x; x < u.size; x += WG_X) {
        let rgb = jitter_range(r, sample(s, y, x), 0u, contrast_at);
        acc += gray(rgb);
        store(first + y * u.size + x, npix, rgb);
      }
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var t = 0u; t < WG; t++) { total += partial[t]; }
    view_mean = total / f32(npix);
  }
  let mean = workgroupUniformLoad(&view_mean);

  let to_gray = rec[r + F_GRAY] != 0u;
  let solarize = rec[r + F_SOLARIZE] != 0u;
  let contrast = bitcast<f32>(rec[r + F_FACTORS + 1u]);
  for (var y = lid3.y; y < u.size; y += WG_Y) {
    for (var x = lid3.x; x < u.size; x += WG_X) {
      let k = first + y * u.size + x;
      var rgb: vec3<f32>;
      if (jittered) {
        rgb = blend(load(k, npix), vec3<f32>(mean), contrast);
        rgb = jitter_range(r, rgb, contrast_at + 1u, 4u);
      } else {
        rgb = sample(s, y, x);
      }
#if ${RGB}
      if (to_gray) { rgb = vec3<f32>(gray(rgb)); }
#endif
      for (var c = 0u; c < C; c++) {
        var val = rgb[c];
#if ${FINAL}
        if (solarize && val >= 0.5) { val = 1.0 - val; }
        val = (val - u.mean[c]) / u.stdev[c];
#endif
        out[k + c * npix] = val;
      }
    }
  }
}
