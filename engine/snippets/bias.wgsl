// The bias of output channel m where the kernel's optional `bias` binding is bound (HAS_BIAS, its
// offset u.off_bias), else 0: for kernels that add a bias as they store (conv2d's direct and
// pointwise kernels).
fn bias_at(m: u32) -> f32 {
#if ${HAS_BIAS}
  return bias[u.off_bias + m];
#else
  return 0.0;
#endif
}
