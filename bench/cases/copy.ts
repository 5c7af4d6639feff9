// Copies, the run's bandwidth reference (the best copy GB/s): our contiguous copy (ops.clone) and a
// bench-only vec4 copy that does nothing but load and store, which shows the adapter's bandwidth; then
// the contiguous memory-bound ops (elementwise add, scalar mul, relu, a per-row bias add, concat), each
// with `of_vec4`, its GB/s over that of a vec4 copy timed right after it in the same process.

import { defineKernel, ops, Rng, type Tensor } from '../../engine/index.js';
import type { BenchCase, BenchContext, OursTiming } from '../case.js';
import type { Timing } from '../timing.js';
import { COPY_CASE } from '../report.js';
import { timeOurs } from './common.js';
import vec4Source from './copy_vec4.wgsl';

/** 64 MiB each way: well past the host's caches, so a copy runs at memory bandwidth. */
const COPY_ELEMENTS = 1 << 24;

const vec4Kernel = defineKernel({
  name: 'bench_copy_vec4',
  source: vec4Source,
  workgroupSize: 256,
  uniforms: { n4: 'u32' },
  inputs: { src: 'vec4<u32>' },
  outputs: { dst: 'vec4<u32>' },
});

/** out ← x for contiguous tensors at offset 0 (fresh ones) whose size is a multiple of 4. */
export function vec4Copy(x: Tensor, out: Tensor): void {
  if (x.offset !== 0 || out.offset !== 0 || x.size % 4 !== 0 || out.size !== x.size || !x.isContiguous()) {
    throw new Error(`bench vec4 copy: needs equal-size contiguous tensors at offset 0, multiple of 4 elements (${x}, ${out})`);
  }
  const n4 = x.size / 4;
  vec4Kernel.launch({ inputs: [x], outputs: [out], uniforms: { n4 }, grid: { invocations: n4 } });
}

/** Time a vec4 copy of n elements, the reference each contiguous case reports itself against. */
function timeVec4(ctx: BenchContext, n: number): Promise<Timing> {
  const x = ctx.engine.randn([n], new Rng(3));
  return timeOurs(ctx, () => {
    const out = ctx.engine.empty([n]);
    vec4Copy(x, out);
    return [out];
  }).finally(() => x.dispose());
}

/**
 * A contiguous memory-bound op over `inputs` (made fresh, each of n elements unless shaped otherwise)
 * moving `bytes`; besides its GB/s it reports `of_vec4`, its GB/s over a vec4 copy's of n elements timed
 * right after it in the same process (the share of the adapter's bandwidth it reaches).
 */
function streamCase(name: string, shape: string, n: number, bytes: number, shapes: number[][], run: (xs: Tensor[]) => Tensor): BenchCase {
  return {
    name,
    shape,
    quick: true,
    bytes,
    ours: async (ctx: BenchContext) => {
      const rng = new Rng(4);
      const xs = shapes.map((s) => ctx.engine.randn(s, rng));
      const t: OursTiming = await timeOurs(ctx, () => [run(xs)]);
      xs.forEach((x) => x.dispose());
      const vec4 = await timeVec4(ctx, n);
      const ms = (x: Timing) => (x.method === 'timestamp-query' && t.method === 'timestamp-query' ? x.medianMs : x.wallMedianMs);
      return { ...t, baselines: { vec4_copy: vec4 }, figures: { of_vec4: bytes / ms(t) / ((8 * n) / ms(vec4)) } };
    },
  };
}

/** `vec4`: the bench-only kernel (n must be a multiple of 4); otherwise ops.clone. No tfjs peer: its clone shares the buffer. */
export function copyCase(n: number, vec4 = false): BenchCase {
  if (!vec4) return streamCase(COPY_CASE, `${n} f32 (ops.clone)`, n, 2 * n * 4, [[n]], ([x]) => ops.clone(x));
  return {
    name: COPY_CASE,
    shape: `${n} f32 (vec4 load/store, bench kernel)`,
    quick: true,
    bytes: 2 * n * 4,
    ours: async (ctx: BenchContext) => timeVec4(ctx, n),
  };
}

const N = COPY_ELEMENTS;
const ROWS = 4096;
export const copyCases: BenchCase[] = [
  copyCase(N),
  copyCase(N, true),
  streamCase('elementwise', `add ${N} + ${N}`, N, 3 * N * 4, [[N], [N]], ([a, b]) => ops.add(a, b)),
  streamCase('elementwise', `mul ${N} by a scalar`, N, 2 * N * 4, [[N]], ([a]) => ops.mul(a, 1.5)),
  streamCase('elementwise', `relu ${N}`, N, 2 * N * 4, [[N]], ([a]) => ops.relu(a)),
  streamCase('elementwise', `add ${ROWS}x${N / ROWS} + per-row bias [${N / ROWS}]`, N, (2 * N + N / ROWS) * 4, [[ROWS, N / ROWS], [N / ROWS]], ([a, b]) =>
    ops.add(a, b),
  ),
  streamCase('concat', `2 x ${ROWS}x${N / ROWS / 2} on the last axis`, N, 2 * N * 4, [[ROWS, N / ROWS / 2], [ROWS, N / ROWS / 2]], (xs) =>
    ops.concat(xs, 1),
  ),
];
