// One i32 element += 1, in place: batch norm's num_batches_tracked. The elementwise kernels are f32
// only, and a host-side count would go stale when a checkpoint is loaded into the buffer.

struct Params {
  off: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> t: array<i32>;

@compute @workgroup_size(1)
fn main() {
  t[u.off] += 1;
}
