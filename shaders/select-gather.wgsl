// HVP's training-batch assembly: out row s·B + b = views row (table[choice[b], from + s] - view_off)·B + b,
// each row `row_len` elements (an image C·H·W, or an embedding). One thread per output element moves
// its 32 bits as u32, so f32 and i32 data both pass unchanged. Indices live on the GPU and cannot be
// validated at op creation: choice is clamped into [0, C) and the view into [0, V), so a bad index
// reads a wrong view but never memory outside the tensor.

struct Params {
  n: u32,          // output elements
  row_len: u32,
  batch: u32,
  combos: u32,
  cols: u32,       // table row length n
  first: u32,      // first table column gathered
  views: u32,      // V, rows of `views` / B
  view_off: i32,   // subtracted from the table's view index (DINO's locals tensor starts at view G)
  src_off: u32,
  choice_off: u32,
  t_off: u32,
  row_width: u32,  // threads per grid row
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> choice: array<i32>;
@group(0) @binding(3) var<storage, read> table: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x + gid.y * u.row_width;
  if (o >= u.n) { return; }
  let r = o / u.row_len;
  let e = o % u.row_len;
  let s = r / u.batch;
  let b = r % u.batch;
  let c = u32(clamp(choice[u.choice_off + b], 0, i32(u.combos) - 1));
  let v = u32(clamp(table[u.t_off + c * u.cols + u.first + s] - u.view_off, 0, i32(u.views) - 1));
  out[o] = src[u.src_off + (v * u.batch + b) * u.row_len + e];
}
