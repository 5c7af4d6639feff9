// Entry `col` of combination `c` of the table (i32 [C, cols] from element t_off; the kernel declares
// a `table` input and `t_off`, `cols` uniforms), clamped into [0, limit). Indices live on the GPU and
// cannot be checked when the op is created: a bad one reads a wrong view, never memory outside a tensor.
fn table_entry(c: u32, col: u32, limit: u32) -> u32 {
  return u32(clamp(table[u.t_off + c * u.cols + col], 0, i32(limit) - 1));
}
