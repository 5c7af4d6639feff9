// Shapes and strides as uniforms of type array<vec4<u32>, 2>: one entry per axis (rank ≤ 8), packed
// four to a vec4 so that the array meets the uniform layout's 16-byte stride.
fn dim_of(v: array<vec4<u32>, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}
