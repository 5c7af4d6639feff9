// Addressing of strided operands for kernels whose launcher merged the axes every operand walks alike
// (engine/ops/map.ts, view.ts). The including kernel declares `u.shape` and
// `fn strides_at(d: u32) -> vec4<u32>`, each lane the stride of one operand (up to four) along axis d.
#include "dims"

/**
 * Where row `row` (the index over every axis but the innermost, row-major) starts in each operand:
 * `off` plus the row's coordinates times the strides. The outermost axis needs no division since its
 * index is what remains; a CPU adapter runs integer divisions one lane at a time, so kernels call
 * this once per run of columns, not per element.
 */
fn row_start(row: u32, rank: u32, off: vec4<u32>) -> vec4<u32> {
  var at = off;
  var rem = row;
  for (var d = i32(rank) - 2; d >= 0; d--) {
    let size = dim_of(u.shape, u32(d));
    var idx = rem;
    if (d > 0) {
      rem = idx / size;
      idx -= rem * size;
    }
    at += idx * strides_at(u32(d));
  }
  return at;
}

/**
 * The run of CHUNK columns of one row that invocation i walks (`u.chunks` runs per row): its row, its
 * first column j0, the row length, where the row starts in each operand and each operand's column
 * stride. The including kernel also declares CHUNK and the uniforms rank, chunks and off.
 */
struct Run {
  row: u32,
  j0: u32,
  inner: u32,
  at: vec4<u32>,
  step: vec4<u32>,
}

fn run_of(i: u32) -> Run {
  let last = u.rank - 1u;
  let row = i / u.chunks;
  return Run(row, (i - row * u.chunks) * CHUNK, dim_of(u.shape, last), row_start(row, u.rank, u.off), strides_at(last));
}
