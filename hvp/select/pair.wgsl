// One invocation per (sample b, combination c) of u.batch × u.combos, at o = b · u.combos + c: the
// kernel declares the uniforms batch and combos and includes "grid" (flat_index, row_width).
struct Pair {
  o: u32,
  b: u32,
  c: u32,
}

/** Invocation gid's pair; b ≥ u.batch past the last one. */
fn pair_of(gid: vec3<u32>) -> Pair {
  let o = flat_index(gid);
  return Pair(o, o / u.combos, o % u.combos);
}
