// Tree reduction in workgroup memory over groups of RED_N consecutive invocations (RED_N a power of
// two dividing WG; RED_N = WG reduces the whole workgroup). The including kernel declares the
// constants WG and RED_N, the value type `alias Red = ...;` and `fn combine(a: Red, b: Red, op: u32)
// -> Red`, where `op` selects among a kernel's reductions (softmax's max and sum) and is passed
// through as given. Every invocation of the workgroup must call reduce_group (it holds barriers); each
// gets its group's total, combined in the same fixed order by every workgroup.
var<workgroup> reduce_scratch: array<Red, WG>;

/** v combined over this invocation's group (t: its index within the group, lid: in the workgroup). */
fn reduce_group(v: Red, lid: u32, t: u32, op: u32) -> Red {
  reduce_scratch[lid] = v;
  workgroupBarrier();
  for (var s = RED_N / 2u; s > 0u; s = s >> 1u) {
    if (t < s) { reduce_scratch[lid] = combine(reduce_scratch[lid], reduce_scratch[lid + s], op); }
    workgroupBarrier();
  }
  let r = reduce_scratch[lid - t];
  workgroupBarrier();  // everyone has read the result before the next call overwrites it
  return r;
}
