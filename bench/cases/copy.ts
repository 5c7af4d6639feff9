// Copies, the run's bandwidth reference (the best copy GB/s): our contiguous copy (ops.clone, the
// engine's strided copy kernel) and a bench-only vec4 copy that does nothing but load and store, which
// shows how far the engine's copy is from the adapter's bandwidth.

import { defineKernel, ops, Rng, type Tensor } from '../../engine/index.js';
import type { BenchCase, BenchContext } from '../case.js';
import { COPY_CASE } from '../report.js';
import { timeOurs } from './common.js';
import vec4Source from './copy_vec4.wgsl';

/** 64 MiB each way: well past the host's caches, so a copy runs at memory bandwidth. */
const COPY_ELEMENTS = 1 << 24;

const vec4Kernel = defineKernel({
  name: 'bench_copy_vec4',
  source: vec4Source,
  workgroupSize: 256,
  uniforms: { n4: 'u32', row_width: 'u32' },
  inputs: { src: 'vec4<u32>' },
  outputs: { dst: 'vec4<u32>' },
});

/** out ← x for contiguous tensors at offset 0 (fresh ones) whose size is a multiple of 4. */
export function vec4Copy(x: Tensor, out: Tensor): void {
  if (x.offset !== 0 || out.offset !== 0 || x.size % 4 !== 0 || out.size !== x.size || !x.isContiguous()) {
    throw new Error(`bench vec4 copy: needs equal-size contiguous tensors at offset 0, multiple of 4 elements (${x}, ${out})`);
  }
  const n4 = x.size / 4;
  const g = vec4Kernel.grid(n4);
  vec4Kernel.launch({ inputs: [x], outputs: [out], uniforms: { n4, row_width: g.rowWidth }, workgroups: g.workgroups });
}

/** `vec4`: the bench-only kernel (n must be a multiple of 4); otherwise ops.clone. No tfjs peer: its clone shares the buffer. */
export function copyCase(n: number, vec4 = false): BenchCase {
  return {
    name: COPY_CASE,
    shape: `${n} f32 (${vec4 ? 'vec4 load/store, bench kernel' : 'ops.clone'})`,
    quick: true,
    bytes: 2 * n * 4,
    ours: async (ctx: BenchContext) => {
      const x = ctx.engine.randn([n], new Rng(4));
      const t = await timeOurs(ctx, () => {
        if (!vec4) return [ops.clone(x)];
        const out = ctx.engine.empty([n]);
        vec4Copy(x, out);
        return [out];
      });
      x.dispose();
      return t;
    },
  };
}

export const copyCases: BenchCase[] = [copyCase(COPY_ELEMENTS), copyCase(COPY_ELEMENTS, true)];
