// NaN tests on the bits: WGSL compilers may assume floats are never NaN and fold `x != x` away.
fn is_nan_bits(bits: u32) -> bool {
  return (bits & 0x7fffffffu) > 0x7f800000u;
}

fn is_nan(x: f32) -> bool {
  return is_nan_bits(bitcast<u32>(x));
}
