// Weighted k-NN vote (hvp/eval/knn.ts), one invocation per test row: neighbour j votes for its train
// label with weight exp(sim_j / T), computed as exp((sim_j - sim_0) / T) (the same ratios, no overflow
// for small T). The prediction is the class with the largest total, ties to the lowest class. Also the
// rank of the true label in that order (0 = predicted), for top-5 accuracy: a class no neighbour votes
// for has a total of 0 and ranks after every voted class and after the unvoted classes below it.
// Every class's total is summed in neighbour order, so equal totals compare equal.


#include "grid"

const K = ${K}u;

var<private> w: array<f32, K>;
var<private> cls: array<i32, K>;

fn total(c: i32) -> f32 {
  var s = 0.0;
  for (var l = 0u; l < K; l++) {
    if (cls[l] == c) { s += w[l]; }
  }
  return s;
}

fn first_of_class(j: u32) -> bool {
  for (var l = 0u; l < j; l++) {
    if (cls[l] == cls[j]) { return false; }
  }
  return true;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = flat_index(gid);
  if (row >= u.rows) { return; }
  let top = top_v[row * K];
  for (var j = 0u; j < K; j++) {
    w[j] = exp((top_v[row * K + j] - top) * u.inv_t);
    cls[j] = train_labels[top_i[row * K + j]];
  }
  let y = test_labels[u.label_off + row];
  let vy = total(y);
  var best_c = cls[0];
  var best_v = total(best_c);
  var above = 0;       // voted classes ordered before y
  var voted_below = 0; // voted classes with a lower index than y
  for (var j = 0u; j < K; j++) {
    if (!first_of_class(j)) { continue; }
    let c = cls[j];
    let v = total(c);
    if (v > best_v || (v == best_v && c < best_c)) {
      best_v = v;
      best_c = c;
    }
    if (c != y && (v > vy || (v == vy && c < y))) { above++; }
    if (c < y) { voted_below++; }
  }
  var r = above;
  if (vy == 0.0) { r += y - voted_below; }
  pred[u.out_off + row] = best_c;
  rank[u.out_off + row] = r;
}
