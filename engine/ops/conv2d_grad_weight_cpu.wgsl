// conv2d weight gradient for CPU adapters (lavapipe): dW[co, ci, kh, kw] = Σ_pixels dy[co, pixel] ·
// x[ci, pixel·stride - pad + (kh, kw)], with the pixels (K, the batch·OH·OW axis) split among the
// invocations of a workgroup and the slices of grid z, and the outputs among workgroups.
//
// Why not conv2d.wgsl's DW GEMM: there an invocation's columns are taps, so each of its loads is a
// gather whose lanes hold different taps, its per-column bounds tests run for every pixel, and a
// narrow layer (8 output channels, 1-16 input channels: N = 9-144) leaves most of the 16×8 block and
// most lanes idle. Here every invocation computes the same TM × (CB channels × KH × KW) block over
// its own pixels: lanes read neighbouring pixels, the bounds tests are per row and column of the
// window (KH + KW of them per pixel, shared by the CB channels), the taps are constants, and no lane
// idles. The workgroup sums its invocations' blocks through workgroup memory at the end (one
// barrier), and ops/conv.ts sums the slices.

// Uniforms (declared in engine/ops/conv.ts): k_per_slice (pixels per slice), pixels (batch·OH·OW),
// off_dy, off_x, off_partial (offsets of dy, x, partial); bindings dy, x, partial.

const CO: u32 = ${CO};
const CI: u32 = ${CI};
const H: u32 = ${H};
const W: u32 = ${W};
const KH: u32 = ${KH};
const KW: u32 = ${KW};
const OH: u32 = ${OH};
const OW: u32 = ${OW};
const STRIDE: i32 = ${STRIDE};
const PAD: i32 = ${PAD};
const LANES = WG;        // invocations per workgroup
const TM = ${TM}u;        // output channels per workgroup
const CB = ${CB}u;        // input channels per workgroup
const TAPS = KH * KW;
const TN = CB * TAPS;
const OPLANE = OH * OW;
const N = CI * TAPS;      // columns of dW

var<workgroup> blocks: array<f32, LANES * TM * TN>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * TM;
  let c0 = wid.x * CB;
  var acc: array<f32, TM * TN>;
  for (var e = 0u; e < TM * TN; e++) { acc[e] = 0.0; }
  // Rows past CO and channels past CI read row CO - 1 and channel CI - 1: finite values that are
  // never stored, which keeps the loads free of tests.
  var a_rows: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { a_rows[i] = min(m0 + i, CO - 1u) * OPLANE; }
  var b_chans: array<u32, CB>;
  for (var c = 0u; c < CB; c++) { b_chans[c] = min(c0 + c, CI - 1u) * H * W; }

  let k_begin = wid.z * u.k_per_slice;
  let k_end = min(u.pixels, k_begin + u.k_per_slice);
  for (var k = k_begin + lid; k < k_end; k += LANES) {
    let img = k / OPLANE;
    let pix = k % OPLANE;
    let iy0 = i32(pix / OW) * STRIDE - PAD;
    let ix0 = i32(pix % OW) * STRIDE - PAD;
    var av: array<f32, TM>;
    let a_base = u.off_dy + img * CO * OPLANE + pix;
    for (var i = 0u; i < TM; i++) { av[i] = dy[a_base + a_rows[i]]; }
    var row_ok: array<bool, KH>;
    var col_ok: array<bool, KW>;
    for (var r = 0u; r < KH; r++) { row_ok[r] = u32(iy0 + i32(r)) < H; }
    for (var s = 0u; s < KW; s++) { col_ok[s] = u32(ix0 + i32(s)) < W; }
    // The window's corner, which may lie in the padding: only in-bounds taps are ever read.
    let corner = i32(u.off_x + img * CI * H * W) + iy0 * i32(W) + ix0;
    var bv: array<f32, TN>;
    for (var c = 0u; c < CB; c++) {
      for (var r = 0u; r < KH; r++) {
        for (var s = 0u; s < KW; s++) {
          let ok = row_ok[r] && col_ok[s];
          let idx = u32(corner + i32(r * W + s)) + b_chans[c];
          bv[(c * KH + r) * KW + s] = select(0.0, x[select(0u, idx, ok)], ok);
        }
      }
    }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(av[i], bv[j], acc[i * TN + j]); }
    }
  }

  for (var e = 0u; e < TM * TN; e++) { blocks[e * LANES + lid] = acc[e]; }
  workgroupBarrier();
  for (var e = lid; e < TM * TN; e += LANES) {
    var total = 0.0;
    for (var l = 0u; l < LANES; l++) { total += blocks[e * LANES + l]; }
    let m = m0 + e / TN;
    let j = e % TN;
    let ci = c0 + j / TAPS;
    if (m < CO && ci < CI) {
      partial[u.off_partial + wid.z * CO * N + m * N + ci * TAPS + j % TAPS] = total;
    }
  }
}
