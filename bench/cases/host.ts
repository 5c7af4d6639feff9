// Host cost per op: a long chain of tiny elementwise ops (adds and relus on 64 elements), whose GPU
// work is negligible, so the time is the engine's own JS per op: tensor creation, the map kernel's
// launch, the runtime's dispatch (cache lookups, uniform packing, encoding) and, with the tape, the
// autograd record and backward. `host_us_per_op` is the encoding time alone (the chain is encoded
// with no submit in between), `gpu_us_per_op` the GPU time of the submitted chain, and
// `bare_us_per_op` the same number of dispatches encoded straight on Dawn (pipeline, bind group,
// dispatch), the floor under any engine.

import { ops, Rng, type Engine, type Tensor } from '../../engine/index.js';
import type { BenchCase, BenchContext, OursTiming } from '../case.js';
import { timeGpu } from '../timing.js';

const N = 64;
/** Ops per run: half adds, half relus. */
const OPS = 2000;

const BARE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3u) { x[i.x] = x[i.x] + 1.0; }`;

/** Microseconds to encode OPS dispatches of a trivial kernel directly on the device. */
function bareEncodeUs(engine: Engine): number {
  const device = engine.backend.device;
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: BARE }), entryPoint: 'main' } });
  const buffer = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.STORAGE });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] });
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < OPS; i++) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    const cmd = enc.finish();
    runs.push(performance.now() - t0);
    device.queue.submit([cmd]);
  }
  buffer.destroy();
  return (1000 * runs.sort((a, b) => a - b)[2]) / OPS;
}

function chain(x: Tensor): Tensor {
  let h = x;
  for (let i = 0; i < OPS / 2; i++) h = ops.relu(ops.add(h, 0.5));
  return h;
}

function hostCase(withTape: boolean): BenchCase {
  return {
    name: withTape ? 'host: small-op chain + backward' : 'host: small-op chain',
    shape: `${OPS} ops (add, relu) on ${N} elements${withTape ? ', taped, then backward' : ''}`,
    quick: true,
    // Encoding time of one run is a few tens of ms, where a garbage collection or a busy neighbour moves
    // single runs by half: the median of 25 (after JIT warm-up) is the steady state.
    reps: { warmup: 5, reps: 25 },
    ours: async (ctx: BenchContext): Promise<OursTiming> => {
      const { engine } = ctx;
      const x = engine.randn([N], new Rng(21));
      x.requiresGrad = withTape;
      const hostMs: number[] = [];
      let dispatches = 0;
      const run = () => {
        const d0 = engine.backend.counters.dispatches;
        const t0 = performance.now();
        engine.scope(() => {
          const h = chain(x);
          if (withTape) ops.sum(h).backward();
        });
        hostMs.push(performance.now() - t0);
        dispatches = engine.backend.counters.dispatches - d0;
        return () => {
          x.grad?.dispose();
          x.grad = null;
        };
      };
      const t = await timeGpu(run, () => engine.sync(), ctx.time);
      x.dispose();
      const warm = hostMs.slice(ctx.time.warmup ?? 2).sort((a, b) => a - b);
      const host = warm[Math.floor(warm.length / 2)];
      return {
        ...t,
        figures: {
          dispatches,
          host_us_per_op: (1000 * host) / dispatches,
          gpu_us_per_op: (1000 * t.medianMs) / dispatches,
          ops_per_s: (1000 * dispatches) / t.wallMedianMs,
          bare_us_per_op: bareEncodeUs(engine),
        },
      };
    },
  };
}

export const hostCases: BenchCase[] = [hostCase(false), hostCase(true)];
