// The forward of a 1×1 convolution with stride S and no padding on CPU adapters (a ResNet's
// downsampling shortcut): dst[n, m, p] = bias[m] + Σ_c w[m, c] · src[n, c, row(p)·S, col(p)·S] for the
// output pixels p of the flattened plane. conv2d.wgsl's GEMM has K = the few input channels here, so
// its bookkeeping per tile and its scattered stores outweigh the multiply-adds; on lavapipe this
// kernel runs the demo's 8 → 16 channel shortcut 1.6-1.9× as fast.
//
// An invocation owns 4 neighbouring pixels of one image's flattened output plane (a quad may cross a
// row) for all DST_C (at most 16) output channels, so each input pixel is gathered once. Per input channel it gathers the 4 input pixels once into a vec4 and
// adds w[m, c] times it to each channel's vec4 accumulator; both loops have literal bounds and
// unroll (with the channel count read from the uniforms the layer ran 1.3× slower). Where the plane is a whole number of quads (VEC_OUT) each channel's
// 4 outputs are one vec4 store; otherwise four guarded scalar stores.
//
// Template values (ops/conv-pointwise.ts): SRC_H, SRC_W (src plane), DST_C, DST_W, PLANE (output
// pixels per channel), S, CI (input channels), VEC_OUT, TD (dst's element type: vec4<f32> with
// VEC_OUT, else f32).
// Uniforms: invocations; the kernel API generates row_width (grid) and the offsets (in f32s).

#include "grid"
#include "bias"

const CI: u32 = ${CI};
const SRC_W: u32 = ${SRC_W};
const SRC_PLANE: u32 = ${SRC_H} * SRC_W;
const DST_C: u32 = ${DST_C};
const DST_W: u32 = ${DST_W};
const PLANE: u32 = ${PLANE};
const S: u32 = ${S};
const QUADS: u32 = (PLANE + 3u) / 4u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let id = flat_index(gid);
  if (id >= u.invocations) { return; }
  // id = n · QUADS + quad: neighbouring invocations take neighbouring quads.
  let quad = id % QUADS;
  let n = id / QUADS;
  let p0 = quad * 4u;
  // The input pixel of each output pixel; a last quad's pixels past the plane read the plane's last
  // pixel (finite, never stored).
  var at: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) {
    let p = min(p0 + j, PLANE - 1u);
    at[j] = (p / DST_W) * S * SRC_W + (p % DST_W) * S;
  }
  var acc: array<vec4<f32>, DST_C>;
  let img = u.off_src + n * CI * SRC_PLANE;
  for (var c = 0u; c < CI; c++) {
    let base = img + c * SRC_PLANE;
    let v = vec4(src[base + at[0]], src[base + at[1]], src[base + at[2]], src[base + at[3]]);
    for (var m = 0u; m < DST_C; m++) { acc[m] = fma(vec4(w[u.off_w + m * CI + c]), v, acc[m]); }
  }

  for (var m = 0u; m < DST_C; m++) {
    let r = acc[m] + bias_at(m);
#if ${VEC_OUT}
    dst[u.off_dst / 4u + (n * DST_C + m) * QUADS + quad] = r;
#else
    let o = u.off_dst + (n * DST_C + m) * PLANE + p0;
    for (var j = 0u; j < 4u; j++) {
      if (p0 + j < PLANE) { dst[o + j] = r[j]; }
    }
#endif
  }
}
