// Indexed reads along one axis, their adjoints (index-adds) and one-hot encoding. Variants:
//   GATHER   out[c] = src[c with c[axis] replaced by index[c]]: torch.gather, and index_select when
//            the 1-D index is seen through stride 0 on every other axis.
//   SCATTER  gather's backward: each destination element of the input gradient scans the k index
//            entries in its column that could point at it and sums the matching gradient entries.
//   LINKS    index_select's backward, step 1, for a 1-D index of length k: next[m] = the next
//            position after m holding the same (clamped) index, head[j] = the first position holding
//            j; -1 where there is none. Written as one array: next at [0, k), head at [k, k + dim).
//   CHAIN    index_select's backward, step 2: each destination element follows its row's chain
//            head[j] -> next -> ... and sums those gradient rows.
//   ONE_HOT  out[r, c] = (labels[r] == c).
// Indices live on the GPU, so they cannot be validated when the op is created: every index is clamped
// into [0, dim) instead, so a bad index reads (and routes its gradient to) the first or last row and
// never touches memory outside the tensor. One-hot rows whose label is out of range stay all zero.
//
// Why no atomics: WGSL has atomics only for i32/u32, so a float index-add would need compare-and-swap
// loops, and its summation order (hence its rounding) would change from run to run. Both index-adds
// here sum in ascending index position: deterministic, no sort, no prefix sum. SCATTER costs
// numel(x) * k index reads, cheap for gather's usual k (1 for picking labels). index_select's index is
// shared by every row, so LINKS builds its chains once, in about k * (k/2 + dim) index reads over only
// k + dim threads, and CHAIN then reads each gradient element once: for x [1024, 384] and k = 2048 this
// is about 100x less work than scanning.

// Uniforms (gather.ts): n is the elements written by this dispatch; dim the size of the indexed axis of x
// (indices are clamped into [0, dim)); k the index entries along the axis (SCATTER, LINKS, CHAIN) or
// the number of classes (ONE_HOT); shape that of what is written (GATHER's output, SCATTER's and
// CHAIN's x-shaped gradient); src_str x's strides (GATHER) or the output gradient's (SCATTER, CHAIN);
// idx_str the index's strides (LINKS: the 1-D index's stride first); lim (SCATTER) the index shape:
// destinations beyond it off the axis receive 0. Bindings: src (not in LINKS, ONE_HOT), idx, out; src
// and out are u32 for integer data, since moving their bits through f32 could flush denormal
// patterns to zero.
#include "grid"
#include "dims"

fn clamped(j: i32) -> u32 {
  return u32(clamp(j, 0, i32(u.dim) - 1));
}

// Clamped entry m of the 1-D index (LINKS).
fn index1d(m: u32) -> u32 {
  return clamped(idx[u.off_idx + m * u.idx_str[0].x]);
}

// First position in [start, k) whose index is j, or -1.
fn find(start: u32, j: u32) -> i32 {
  for (var m = start; m < u.k; m++) {
    if (index1d(m) == j) { return i32(m); }
  }
  return -1;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
#if ${ONE_HOT}
  let label = idx[u.off_idx + i / u.k];
  out[i] = select(0.0, 1.0, label == i32(i % u.k));
#elif ${LINKS}
  if (i < u.k) {
    out[i] = find(i + 1u, index1d(i));
  } else {
    out[i] = find(0u, i - u.k);
  }
#else
  var s = u.off_src;
  var q = u.off_idx;
  var pos = 0u;
  var inside = true;
  var rem = i;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let size = dim_of(u.shape, u32(d));
    let c = rem % size;
    rem = rem / size;
    if (u32(d) == u.axis) {
      pos = c;
    } else {
      s += c * dim_of(u.src_str, u32(d));
      q += c * dim_of(u.idx_str, u32(d));
      inside = inside && c < dim_of(u.lim, u32(d));
    }
  }
  let ss = dim_of(u.src_str, u.axis);
#if ${GATHER}
  q += pos * dim_of(u.idx_str, u.axis);
  out[i] = src[s + clamped(idx[q]) * ss];
#elif ${SCATTER}
  var acc = 0.0;
  if (inside) {
    let qs = dim_of(u.idx_str, u.axis);
    for (var k = 0u; k < u.k; k++) {
      if (clamped(idx[q + k * qs]) == pos) {
        acc += src[s + k * ss];
      }
    }
  }
  out[i] = acc;
#else
  // CHAIN: idx holds LINKS's output; next[m] > m, so the walk ends.
  var acc = 0.0;
  var m = idx[u.k + pos];
  while (m >= 0) {
    acc += src[s + u32(m) * ss];
    m = idx[u32(m)];
  }
  out[i] = acc;
#endif
#endif
}
