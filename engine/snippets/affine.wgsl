// The optional affine weight of a normalisation (batch_norm.wgsl, layer_norm.wgsl): w at u.off_w
// with HAS_W, else 1.
fn weight(i: u32) -> f32 {
#if ${HAS_W}
  return w[u.off_w + i];
#else
  return 1.0;
#endif
}
