// HVP's SimCLR pair scores from one Gram matrix G [N, N] of all N = V·B L2-normalised embeddings
// (row r = v·B + b). Two variants:
//   LSE      one thread per (row r, view w): lse[r, w] = log Σ_{b'} exp(G[r, w·B + b'] / τ) over view
//            w's block, r itself excluded. Written as [N, V].
//   COMBINE  one thread per (sample b, combination c) with views (i, j) = table[c, 0..2):
//            ℓ(r | i, j) = logaddexp(lse[r, i], lse[r, j]) - G[r, partner] / τ, for r = (i, b) and
//            r = (j, b); s_b(c) = the sum of the two. This is NT-Xent's per-sample loss on views i and j:
//            each row's softmax runs over the 2B rows of views i and j except itself.

#include "grid"

// Finite stand-in for -∞ (WGSL may assume no infinities): a block holding only r itself (B = 1) has
// this log-sum-exp, and exp(NEG_BIG - m) is exactly 0 in logaddexp.
const NEG_BIG = -3.0e38;

fn sim(r: u32, col: u32) -> f32 {
  return gram[u.off_gram + r * u.views * u.batch + col] * u.inv_temp;
}

#if ${LSE}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = flat_index(gid);
  let n = u.views * u.batch;
  if (o >= n * u.views) { return; }
  let r = o / u.views;
  let w = o % u.views;
  // Online log-sum-exp: running max m and the sum s of exp(x - m).
  var m = NEG_BIG;
  var s = 0.0;
  for (var k = 0u; k < u.batch; k++) {
    let col = w * u.batch + k;
    if (col == r) { continue; }
    let x = sim(r, col);
    let m2 = max(m, x);
    s = s * exp(m - m2) + exp(x - m2);
    m = m2;
  }
  lse[o] = select(NEG_BIG, m + log(s), s > 0.0);
}
#else
fn logaddexp(a: f32, b: f32) -> f32 {
  let m = max(a, b);
  return m + log(exp(a - m) + exp(b - m));
}

#include "select/table"
#include "select/pair"

fn view(c: u32, col: u32) -> u32 {
  return table_entry(c, col, u.views);
}

fn row_loss(r: u32, partner: u32, i: u32, j: u32) -> f32 {
  return logaddexp(lse[r * u.views + i], lse[r * u.views + j]) - sim(r, partner);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = pair_of(gid);
  if (p.b >= u.batch) { return; }
  let i = view(p.c, 0u);
  let j = view(p.c, 1u);
  let ri = i * u.batch + p.b;
  let rj = j * u.batch + p.b;
  out[p.o] = row_loss(ri, rj, i, j) + row_loss(rj, ri, i, j);
}
#endif
