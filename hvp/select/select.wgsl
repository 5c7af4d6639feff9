// HVP's per-sample choice over scores [B, C]: one thread per sample walks its row and keeps the
// largest (HARDEST) or smallest (EASIEST) score, ties to the lowest combination index (strict
// comparison, ascending walk), as docs/method.md §1 requires. A NaN score wins its row outright (the first NaN
// in the row, like torch.argmax): the choice then points at it and the written score is NaN, so a
// broken forward is visible in the score instead of silently picking some finite combination.
// NaN is detected on the bits, since WGSL compilers may assume floats are never NaN.

#include "grid"
#include "nan"

fn better(a: f32, b: f32) -> bool {
#if ${EASIEST}
  return a < b;
#else
  return a > b;
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = flat_index(gid);
  if (b >= u.batch) { return; }
  let base = u.off_scores + b * u.combos;
  var idx = 0u;
  var v = scores[base];
  var bits = bitcast<u32>(v);
  for (var c = 1u; c < u.combos && !is_nan_bits(bits); c++) {
    let x = scores[base + c];
    let xb = bitcast<u32>(x);
    if (is_nan_bits(xb) || better(x, v)) {
      idx = c;
      v = x;
      bits = xb;
    }
  }
  choice[b] = i32(idx);
  best[b] = bitcast<f32>(bits);
}
