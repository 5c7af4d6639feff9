// Row kernels with TPR invocations per row and WG / TPR rows per workgroup, over a 2-D grid of
// workgroups (`u.row_width` per grid row; engine/ops/row-layout.ts picks TPR). The including kernel
// declares the constants WG and TPR.
struct RowSlot {
  row: u32,    // the row this invocation works on
  t: u32,      // its index among the row's TPR invocations
  live: bool,  // false past the last row: such invocations compute the last row again and store nothing,
               // so that every invocation reaches the barriers
}

fn row_slot(wid: vec3<u32>, lid: u32, rows: u32) -> RowSlot {
  let r = (wid.x + wid.y * u.row_width) * (WG / TPR) + lid / TPR;
  return RowSlot(min(r, rows - 1u), lid % TPR, r < rows);
}
