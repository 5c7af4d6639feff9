// Entry `col` of combination `c` of the table (i32 [C, cols] from element off_table; the kernel declares
// a `table` input and a `cols` uniform, and the kernel API generates off_table), clamped into [0, limit). Indices live on the GPU and
// cannot be checked when the op is created: a bad one reads a wrong view, never memory outside a tensor.
fn table_entry(c: u32, col: u32, limit: u32) -> u32 {
  return u32(clamp(table[u.off_table + c * u.cols + col], 0, i32(limit) - 1));
}
