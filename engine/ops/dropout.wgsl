// out[i] = keep(i / group) ? x[i] * scale : 0, with scale = 1 / (1 - p): inverted dropout (group = 1)
// and drop-path (group = elements per sample, so a whole sample is kept or dropped). The same kernel
// applied to the output gradient is the backward: the mask is a pure function of (seed, unit), so it
// is regenerated rather than stored.
//
// Random bits: Philox2x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011;
// the counter-based family PyTorch's CUDA generator uses), keyed by the seed, counter (unit, stream).
// A keyed counter-based generator gives statistically independent streams for different seeds, which
// a hash of (seed + index) does not guarantee (nearby seeds can give shifted copies of one stream).
// A unit is kept when its 32 random bits are >= threshold = round(p * 2^32): an exact integer test.

// Uniforms (dropout.ts): group is the number of consecutive elements that share one random draw;
// stream, the second counter word, keeps dropout's and drop-path's draws apart for one seed.
#include "grid"

// High and low words of the 64-bit product a * b (WGSL has no 32x32 -> 64 multiply).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let lh = a0 * b1;
  let hl = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return vec2<u32>(a1 * b1 + (lh >> 16u) + (hl >> 16u) + (mid >> 16u), a * b);
}

fn philox2x32_10(ctr: vec2<u32>, key: u32) -> vec2<u32> {
  var c = ctr;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k += 0x9E3779B9u; }
    let p = mulhilo(0xD256D193u, c.x);
    c = vec2<u32>(p.x ^ k ^ c.y, p.y);
  }
  return c;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
  let bits = philox2x32_10(vec2<u32>(i / u.group, u.stream), u.seed).x;
  out[i] = select(0.0, src[u.off_src + i] * u.scale, bits >= u.threshold);
}
