// Batched C[b] = A[b] · B[b] (+ bias), register-tiled. A and B are read through arbitrary strides, so
// transposed operands (Aᵀ, Bᵀ as views) and broadcast batches (stride 0) need no copy.
//
// Each workgroup computes a BM×BN tile of C from BK-deep slabs of A and B staged in workgroup
// memory; each invocation accumulates a TM×TN block in registers, so every value loaded from
// workgroup memory feeds TM (or TN) multiply-adds. 16×16 invocations with 4×4 blocks give 64×64
// tiles: 16 accumulators per invocation fit in registers on GPUs and in the vector registers
// lavapipe's JIT uses (it runs 8 invocations per AVX lane group), and the 2×64×16 floats of staging
// stay far below the 16 KiB minimum of workgroup memory.
//
// Slabs are staged with the operand's unit-stride axis varying fastest across invocations, so global
// reads stay coalesced whether the operand is transposed or not (A_K_FAST / B_N_FAST).

struct Params {
  m: u32, n: u32, k: u32, _pad: u32,
  a_off: u32, a_sb: u32, a_sm: u32, a_sk: u32,
  b_off: u32, b_sb: u32, b_sk: u32, b_sn: u32,
  bias_off: u32, _p1: u32, _p2: u32, _p3: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
#if ${BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
@group(0) @binding(${OUT_BINDING}) var<storage, read_write> c: array<f32>;

const TM = ${TM}u;
const TN = ${TN}u;
const WX = ${WX}u;
const WY = ${WY}u;
const BK = ${BK}u;
const BM = TM * WY;
const BN = TN * WX;
const THREADS = WX * WY;

var<workgroup> a_tile: array<f32, BK * BM>;  // [k][m]
var<workgroup> b_tile: array<f32, BK * BN>;  // [k][n]

@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let tx = lid % WX;
  let ty = lid / WX;
  let a_base = u.a_off + batch * u.a_sb;
  let b_base = u.b_off + batch * u.b_sb;

  var acc: array<f32, TM * TN>;
  for (var i = 0u; i < TM * TN; i++) { acc[i] = 0.0; }

  for (var k0 = 0u; k0 < u.k; k0 += BK) {
    for (var e = lid; e < BM * BK; e += THREADS) {
#if ${A_K_FAST}
      let mm = e / BK;
      let kk = e % BK;
#else
      let mm = e % BM;
      let kk = e / BM;
#endif
      let gm = row0 + mm;
      let gk = k0 + kk;
      var v = 0.0;
      if (gm < u.m && gk < u.k) { v = a[a_base + gm * u.a_sm + gk * u.a_sk]; }
      a_tile[kk * BM + mm] = v;
    }
    for (var e = lid; e < BN * BK; e += THREADS) {
#if ${B_N_FAST}
      let nn = e % BN;
      let kk = e / BN;
#else
      let nn = e / BK;
      let kk = e % BK;
#endif
      let gn = col0 + nn;
      let gk = k0 + kk;
      var v = 0.0;
      if (gn < u.n && gk < u.k) { v = b[b_base + gk * u.b_sk + gn * u.b_sn]; }
      b_tile[kk * BN + nn] = v;
    }
    workgroupBarrier();

    for (var kk = 0u; kk < BK; kk++) {
      var ar: array<f32, TM>;
      var br: array<f32, TN>;
      for (var i = 0u; i < TM; i++) { ar[i] = a_tile[kk * BM + ty * TM + i]; }
      for (var j = 0u; j < TN; j++) { br[j] = b_tile[kk * BN + tx * TN + j]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
        }
      }
    }
    workgroupBarrier();
  }

  let c_base = batch * u.m * u.n;
  for (var i = 0u; i < TM; i++) {
    let gm = row0 + ty * TM + i;
    if (gm >= u.m) { break; }
    for (var j = 0u; j < TN; j++) {
      let gn = col0 + tx * TN + j;
      if (gn < u.n) {
        var v = acc[i * TN + j];
#if ${BIAS}
        v += bias[u.bias_off + gn];
#endif
        c[c_base + gm * u.n + gn] = v;
      }
    }
  }
}
