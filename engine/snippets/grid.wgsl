// A 1-D launch split over a 2-D grid (grid1d on the host, since one dimension holds at most 65535
// workgroups): the flat index of an invocation (pass global_invocation_id) or of a workgroup (pass
// workgroup_id). The kernel declares a `row_width: u32` uniform, the invocations or workgroups per
// grid row, which the host takes from KernelDef.grid().
fn flat_index(id: vec3<u32>) -> u32 {
  return id.x + id.y * u.row_width;
}
