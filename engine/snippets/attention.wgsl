// What attention.wgsl and attention_backward.wgsl share: the invocation layout, the row vec4 loads
// and the streamed block. A workgroup owns R = RT·TM rows of one head (TM rows per invocation: rt,
// rt + RT, ...); a row is split by columns among PARTS invocations of DC vec4s each (lid = part·RT + rt:
// neighbouring invocations share a part, so they read the same workgroup addresses). The streamed rows
// pass through workgroup memory BS at a time, from the bindings `x` and `y` (forward: keys and values;
// backward: see there), both contiguous [BH, N, D] at the offsets given to stage_block.
const D = ${D}u;          // head dim
const DC = ${DC}u;        // vec4 columns per invocation
const PARTS = ${PARTS}u;  // invocations per row
const D4 = DC * PARTS;    // vec4 columns of a row, zero-padded past D
const TM = ${TM}u;        // rows per invocation
const RT = ${RT}u;        // invocations per part
const R = RT * TM;        // rows per workgroup
const BS = ${BS}u;        // streamed rows per block
const THREADS = RT * PARTS;

/** The head a workgroup works on: heads run along grid y and z, u.grid_y workgroups along y. */
fn head_of(wid: vec3<u32>) -> u32 {
  return wid.y + wid.z * u.grid_y;
}

/**
 * Where an invocation works within its head: its slot rt among the RT invocations of a part, its part
 * h (which DC columns of each row), and its first owned row (the others follow RT apart). Apart from
 * head_of, since it depends on the invocation and the early return on the head must not.
 */
struct Slot {
  rt: u32,
  h: u32,
  row0: u32,
}

fn slot_of(wid: vec3<u32>, lid: u32) -> Slot {
  let rt = lid % RT;
  return Slot(rt, lid / RT, wid.x * R + rt);
}

var<workgroup> x_tile: array<vec4<f32>, BS * D4>;
var<workgroup> y_tile: array<vec4<f32>, BS * D4>;
var<workgroup> part: array<vec4<f32>, PARTS * BS * RT>;  // partial sums of an invocation's TM rows

// The vec4 of a row starting at element i (column col); columns at or past D read as zero. With
// VEC_IO (D and every offset multiples of 4) the buffers are arrays of vec4 and that is one load,
// otherwise four. Reads past the row, or past the buffer, are defined in WGSL (some in-bounds value
// or zero) and masked away.
fn mask4(v: vec4<f32>, col: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(D));
}
#if ${VEC_IO}
fn ld_x(i: u32, col: u32) -> vec4<f32> { return mask4(x[i / 4u], col); }
fn ld_y(i: u32, col: u32) -> vec4<f32> { return mask4(y[i / 4u], col); }
#else
fn ld_x(i: u32, col: u32) -> vec4<f32> { return mask4(vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]), col); }
fn ld_y(i: u32, col: u32) -> vec4<f32> { return mask4(vec4<f32>(y[i], y[i + 1u], y[i + 2u], y[i + 3u]), col); }
#endif

/**
 * Stage streamed rows j0 .. j0 + BS (of n; rows past n read as zero) of x and y into the tiles, head
 * rows starting at element `base`, consecutive invocations on consecutive vec4s of a row (coalesced
 * reads). The caller puts the barrier after it.
 */
fn stage_block(lid: u32, j0: u32, n: u32, base: u32, x_off: u32, y_off: u32) {
  for (var e = lid; e < BS * D4; e += THREADS) {
    let j = j0 + e / D4;
    let col = (e % D4) * 4u;
    var xx = vec4<f32>(0.0);
    var yy = vec4<f32>(0.0);
    if (j < n) {
      xx = ld_x(x_off + base + j * D + col, col);
      yy = ld_y(y_off + base + j * D + col, col);
    }
    x_tile[e] = xx;
    y_tile[e] = yy;
  }
}
