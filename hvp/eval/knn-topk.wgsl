// Running top-k of each row of a similarity block (k-NN, hvp/eval/knn.ts): merges the columns of
// sim [rows, cols] (train samples col_base .. col_base + cols - 1) into the k best (value, train index)
// pairs kept so far for that row, sorted best first. Order: larger similarity first, and among equal
// similarities the lower train index, so the result does not depend on how the train set is chunked.
//
// Each invocation keeps a sorted private list of K entries and inserts every value it scans that beats
// the list's last entry (after the first few hundred columns almost none do, so the scan is one compare
// per column).
// PER_THREAD (CPU adapters): one invocation per row, whose list is the answer; lavapipe runs the
// invocations of a workgroup as SIMD lanes, and barriers there are costly.
// Otherwise (GPUs): one workgroup of WG invocations per row, each scanning a strided share of the
// columns; the K winners are then drawn one at a time by a tree reduction over the lists' heads.

#include "grid"

const K = ${K}u;
// Below every cosine similarity; its index sorts after every real one.
const EMPTY_V = -3.4e38;
const EMPTY_I = 2147483647;

var<private> lv: array<f32, K>;
var<private> li: array<i32, K>;

fn better(v: f32, i: i32, w: f32, j: i32) -> bool {
  return v > w || (v == w && i < j);
}

fn clear_list() {
  for (var e = 0u; e < K; e++) {
    lv[e] = EMPTY_V;
    li[e] = EMPTY_I;
  }
}

// NaN never compares greater, so it never enters a list.
fn insert(v: f32, i: i32) {
  if (!better(v, i, lv[K - 1u], li[K - 1u])) { return; }
  var p = K - 1u;
  while (p > 0u && better(v, i, lv[p - 1u], li[p - 1u])) {
    lv[p] = lv[p - 1u];
    li[p] = li[p - 1u];
    p--;
  }
  lv[p] = v;
  li[p] = i;
}

#if ${PER_THREAD}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = flat_index(gid);
  if (row >= u.rows) { return; }
  clear_list();
  if (u.init == 0u) {
    // The kept entries are sorted already.
    for (var e = 0u; e < K; e++) {
      lv[e] = top_v[row * K + e];
      li[e] = top_i[row * K + e];
    }
  }
  let base = u.off_sim + row * u.cols;
  for (var c = 0u; c < u.cols; c++) { insert(sim[base + c], i32(u.col_base + c)); }
  for (var e = 0u; e < K; e++) {
    top_v[row * K + e] = lv[e];
    top_i[row * K + e] = li[e];
  }
}
#else
const T = WG;
var<workgroup> red_v: array<f32, T>;
var<workgroup> red_i: array<i32, T>;
var<workgroup> red_t: array<u32, T>;
var<workgroup> out_v: array<f32, K>;
var<workgroup> out_i: array<i32, K>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = flat_index(wid);
  if (row >= u.rows) { return; }  // uniform across the workgroup, so barriers stay in uniform control flow
  clear_list();
  // K <= T: invocation lid reads kept entry lid and, at the end, writes entry lid (no cross-invocation hazard).
  if (u.init == 0u && lid < K) { insert(top_v[row * K + lid], top_i[row * K + lid]); }
  let base = u.off_sim + row * u.cols;
  for (var c = lid; c < u.cols; c += T) { insert(sim[base + c], i32(u.col_base + c)); }

  var head = 0u;
  for (var r = 0u; r < K; r++) {
    if (head < K) {
      red_v[lid] = lv[head];
      red_i[lid] = li[head];
    } else {
      red_v[lid] = EMPTY_V;
      red_i[lid] = EMPTY_I;
    }
    red_t[lid] = lid;
    workgroupBarrier();
    for (var s = T / 2u; s > 0u; s >>= 1u) {
      if (lid < s && better(red_v[lid + s], red_i[lid + s], red_v[lid], red_i[lid])) {
        red_v[lid] = red_v[lid + s];
        red_i[lid] = red_i[lid + s];
        red_t[lid] = red_t[lid + s];
      }
      workgroupBarrier();
    }
    if (red_t[0] == lid) { head++; }
    if (lid == 0u) {
      out_v[r] = red_v[0];
      out_i[r] = red_i[0];
    }
    workgroupBarrier();
  }
  if (lid < K) {
    top_v[row * K + lid] = out_v[lid];
    top_i[row * K + lid] = out_i[lid];
  }
}
#endif
