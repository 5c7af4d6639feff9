// conv2d and pooling against float64 references: forward on random inputs, every backward against
// finite differences of the reference. Shapes are small and deliberately awkward: channel counts
// (1, 3, 5, 7, 17, 19, 70), pixel counts (9×11, 13×13) and batches (3, 5, 7) that are not multiples
// of the kernels' tiles, blocks or invocation counts.

import { describe, expect, it } from 'vitest';
import { ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { engine, expectClose, fromGpu, gpuVariantEngine, gradcheck, randNd, toGpu } from './helpers.js';
import { Nd } from './ref.js';
import { conv2dRef, pool2dRef, type PoolKind } from './conv-ref.js';

/** [N, H, W, C] data seen as a non-contiguous [N, C, H, W] tensor (a channels-last view). */
const channelsLast = (t: Tensor) => t.permute(0, 3, 1, 2);
const nhwcToNchw = (x: Nd) => x.permute([0, 3, 1, 2]);

interface ConvRow {
  name: string;
  x: number[];
  w: number[];
  bias: boolean;
  stride: number;
  pad: number;
  /** Input data is laid out [N, H, W, C] and passed to conv2d as a permuted view. */
  nhwc?: boolean;
}

const convRows: ConvRow[] = [
  { name: '3×3 stride 1 pad 1', x: [2, 5, 9, 11], w: [17, 5, 3, 3], bias: true, stride: 1, pad: 1 },
  { name: '3×3 stride 2 pad 1', x: [2, 3, 9, 11], w: [5, 3, 3, 3], bias: true, stride: 2, pad: 1 },
  { name: '1×1 stride 1', x: [2, 17, 9, 11], w: [5, 17, 1, 1], bias: true, stride: 1, pad: 0 },
  { name: '1×1 stride 2 (downsample shortcut)', x: [2, 5, 9, 11], w: [17, 5, 1, 1], bias: false, stride: 2, pad: 0 },
  { name: '7×7 stride 2 pad 3 (stem)', x: [2, 3, 9, 11], w: [17, 3, 7, 7], bias: true, stride: 2, pad: 3 },
  { name: '3×3 pad 1, 70 outputs and 40 inputs (several M tiles and K slabs)', x: [1, 40, 6, 7], w: [70, 40, 3, 3], bias: true, stride: 1, pad: 1 },
  { name: '3×3 pad 1, batch 4 of 16×16 (split-K weight gradient)', x: [4, 3, 16, 16], w: [5, 3, 3, 3], bias: false, stride: 1, pad: 1 },
  { name: '2×2 stride 2 (patchify)', x: [2, 5, 8, 10], w: [17, 5, 2, 2], bias: true, stride: 2, pad: 0 },
  { name: '5×3 stride 3 pad 2 (taps beyond the stride)', x: [2, 5, 9, 11], w: [3, 5, 5, 3], bias: true, stride: 3, pad: 2 },
  { name: 'non-contiguous input, 3×3 stride 2 pad 1', x: [2, 9, 11, 5], w: [17, 5, 3, 3], bias: true, stride: 2, pad: 1, nhwc: true },
  // Narrow layers (the small-image ResNet's 1-64 channels): 8-row blocks, and the CPU weight gradient
  // with its pixels split over invocations and slices, its channel and row tiles partly padding.
  { name: '1 → 8 channels, 3×3 pad 1, batch 5 of 13×13 (weight gradient over several slices)', x: [5, 1, 13, 13], w: [8, 1, 3, 3], bias: true, stride: 1, pad: 1 },
  { name: '7 → 3 channels, 3×3 stride 2 pad 1, batch 3 of 7×7', x: [3, 7, 7, 7], w: [3, 7, 3, 3], bias: true, stride: 2, pad: 1 },
  { name: '19 → 21 channels, 3×3 pad 1 at 5×5 (several channel and row tiles)', x: [3, 19, 5, 5], w: [21, 19, 3, 3], bias: false, stride: 1, pad: 1 },
  { name: '1×1 stride 2, 17 → 9 channels, batch 3 of 7×7', x: [3, 17, 7, 7], w: [9, 17, 1, 1], bias: false, stride: 2, pad: 0 },
  { name: 'non-contiguous input, 3 → 8 channels, 3×3 pad 1, batch 7 of 4×4', x: [7, 4, 4, 3], w: [8, 3, 3, 3], bias: true, stride: 1, pad: 1, nhwc: true },
  // CPU adapters' direct kernel (conv2d_direct.wgsl): rows split into runs with a partial last one
  // (37 = 13 + 13 + 11 pixels), more output channels than a block holds (11 > 8), a 5×5 kernel whose
  // input gradient is the flipped convolution at padding 2, flipped input gradients with 4 and 2 rows
  // per invocation and a partial last block of rows (11 = 4 + 4 + 3, 7 = 2 + 2 + 2 + 1; the second at
  // padding 0, so the flipped kernel pads by 2), and a 1×1 stride-3 layer whose input gradient spreads
  // dy over every third row and column (runs of 12, a multiple of the stride; blocks of 3 rows, the
  // last one partial). At stride 5 a block would need 5 rows, more than the kernel holds: the GEMM.
  // The 1×1 strided forwards with at most 16 output channels take the pointwise kernel on CPU
  // adapters: vec4 stores where the output plane is whole quads (4×4, 4×12), guarded scalar ones
  // where it is not (3×3); '1×1 stride 2 (downsample shortcut)' above has 17 and keeps the GEMM.
  { name: 'direct: 1 → 11 channels, 3×3 pad 1, batch 2 of 5×37 (runs with a partial last one)', x: [2, 1, 5, 37], w: [11, 1, 3, 3], bias: true, stride: 1, pad: 1 },
  { name: 'direct: 2 → 3 channels, 5×5 pad 2, batch 2 of 9×20 (flipped-kernel input gradient)', x: [2, 2, 9, 20], w: [3, 2, 5, 5], bias: false, stride: 1, pad: 2 },
  { name: 'direct: 1 → 5 channels, 3×3 pad 1, batch 2 of 11×13 (input gradient 4 rows at a time)', x: [2, 1, 11, 13], w: [5, 1, 3, 3], bias: true, stride: 1, pad: 1 },
  { name: 'direct: 4 → 3 channels, 3×3 pad 0, batch 2 of 9×18 (input gradient 2 rows at a time)', x: [2, 4, 9, 18], w: [3, 4, 3, 3], bias: false, stride: 1, pad: 0 },
  { name: 'direct: 1×1 stride 3, 4 → 6 channels, batch 2 of 10×35, non-contiguous', x: [2, 10, 35, 4], w: [6, 4, 1, 1], bias: true, stride: 3, pad: 0, nhwc: true },
  { name: '1×1 stride 5, 3 → 4 channels, batch 2 of 11×12 (input gradient by the GEMM)', x: [2, 3, 11, 12], w: [4, 3, 1, 1], bias: false, stride: 5, pad: 0 },
  // GEMMs of >= 1 MFLOP, where CPU adapters compile pipelines specialised to the shape (literal sizes)
  // and take the blocked weight-gradient kernel; the rows above stay below it and read the shape.
  { name: 'specialised: 1 → 8 channels, 3×3 pad 1, batch 64 of 28×28 (the demo stem)', x: [64, 1, 28, 28], w: [8, 1, 3, 3], bias: false, stride: 1, pad: 1 },
  { name: 'specialised: 16 → 24 channels, 3×3 pad 1, batch 6 of 15×15', x: [6, 16, 15, 15], w: [24, 16, 3, 3], bias: true, stride: 1, pad: 1 },
  { name: 'specialised: 16 → 32 channels, 3×3 stride 2 pad 1, batch 8 of 29×29, non-contiguous', x: [8, 29, 29, 16], w: [32, 16, 3, 3], bias: false, stride: 2, pad: 1, nhwc: true },
];

async function checkConv(e: Engine, row: ConvRow): Promise<void> {
  const rng = new Rng(row.name.length * 7919 + row.x.reduce((a, b) => a + b, 0));
  const inputs = [randNd(row.x, rng), randNd(row.w, rng, { scale: 0.5 })];
  if (row.bias) inputs.push(randNd([row.w[0]], rng));
  const view = row.nhwc ? channelsLast : (t: Tensor) => t;
  const gpu = (...[x, w, b]: Tensor[]) => ops.conv2d(view(x), w, b, { stride: row.stride, padding: row.pad });
  const ref = (...[x, w, b]: Nd[]) => conv2dRef(row.nhwc ? nhwcToNchw(x) : x, w, b ?? null, row.stride, row.pad);
  const got = await e.scopeAsync(async () => fromGpu(gpu(...inputs.map((x) => toGpu(e, x)))));
  expectClose(got, ref(...inputs), { rtol: 1e-4, atol: 1e-4 }, row.name);
  await gradcheck(e, inputs, gpu, ref, { maxProbes: 32 });
}

describe('conv2d against a float64 reference', async () => {
  const e = await engine();
  for (const row of convRows) it(row.name, () => checkConv(e, row));

  it('rejects a channel mismatch, naming conv2d and both shapes', async () => {
    await e.scopeAsync(async () => {
      const x = e.zeros([2, 3, 9, 11]);
      const w = e.zeros([5, 4, 3, 3]);
      expect(() => ops.conv2d(x, w)).toThrow(/conv2d.*\[2, 3, 9, 11\].*\[5, 4, 3, 3\]/);
      expect(() => ops.conv2d(x, e.zeros([5, 3, 3, 3]), e.zeros([4]))).toThrow(/conv2d: bias \[4\]/);
      expect(() => ops.conv2d(x, e.zeros([5, 3, 11, 11]))).toThrow(/conv2d: kernel larger/);
    });
  });
});

describe('conv2d: which layers take the direct kernel', async () => {
  const e = await engine();
  /** Kernel names and the direct kernel's SPREAD/FLIP/RY values of one forward and backward. */
  async function launches(x: number[], w: number[], stride: number, pad: number): Promise<string[]> {
    e.backend.startProfile({ wall: true });
    e.scope(() => {
      const xt = e.zeros(x);
      const wt = e.zeros(w);
      xt.requiresGrad = true;
      wt.requiresGrad = true;
      ops.sum(ops.conv2d(xt, wt, null, { stride, padding: pad })).backward();
    });
    const profile = await e.backend.stopProfile();
    return profile.records
      .filter((r) => r.name.startsWith('conv2d'))
      .map((r) => {
        const d = r.defines;
        if (d && 'VEC_OUT' in d) return `${r.name} pointwise`;
        if (!d || !('SPREAD' in d)) return r.name;
        return `${r.name} direct${d.SPREAD ? ' spread' : ''}${d.FLIP ? ' flip' : ''} rows ${d.RY}`;
      });
  }

  it('a 1-channel stem: direct forward, and its input gradient by the flipped kernel 4 rows at a time', async (ctx) => {
    if (!e.backend.isCpuAdapter) ctx.skip();
    // 9 rows in blocks of 3: the equal split of the height into blocks of at most 4.
    expect(await launches([2, 1, 9, 9], [8, 1, 3, 3], 1, 1)).toEqual(['conv2d direct rows 1', 'conv2d_grad_input direct flip rows 3', 'conv2d_grad_weight']);
    expect(await launches([2, 1, 28, 28], [8, 1, 3, 3], 1, 1)).toEqual(['conv2d direct rows 1', 'conv2d_grad_input direct flip rows 4', 'conv2d_grad_weight']);
  });

  it('a 1×1 stride-2 shortcut: its input gradient in one launch, a row of dy and a row of zeros per invocation', async () => {
    // The forward: on CPU adapters the pointwise kernel up to 16 output channels, the GEMM above.
    const narrow = e.backend.isCpuAdapter ? 'conv2d pointwise' : 'conv2d';
    expect(await launches([2, 8, 10, 10], [16, 8, 1, 1], 2, 0)).toEqual([narrow, 'conv2d_grad_input direct spread rows 2', 'conv2d_grad_weight']);
    expect(await launches([2, 8, 10, 10], [32, 8, 1, 1], 2, 0)).toEqual(['conv2d', 'conv2d_grad_input direct spread rows 2', 'conv2d_grad_weight']);
    // Stride 5: 5 rows per invocation is more than the kernel's 4 accumulator rows, so the GEMM, one
    // launch per stride phase (5²).
    const phases = Array<string>(25).fill('conv2d_grad_input');
    expect(await launches([2, 8, 10, 10], [16, 8, 1, 1], 5, 0)).toEqual([narrow, ...phases, 'conv2d_grad_weight']);
  });

  it('an RGB stem and a 3×3 layer with 8 input channels keep the GEMM forward', async (ctx) => {
    if (!e.backend.isCpuAdapter) ctx.skip();
    // 3 channels × 9 pixels × 9 taps: 3 rows per invocation stay within the unrolled body's budget.
    expect(await launches([2, 3, 9, 9], [16, 3, 3, 3], 1, 1)).toEqual(['conv2d', 'conv2d_grad_input direct flip rows 3', 'conv2d_grad_weight']);
    expect(await launches([2, 8, 9, 9], [8, 8, 3, 3], 1, 1)).toEqual(['conv2d', 'conv2d_grad_input', 'conv2d_grad_weight']);
  });
});

// conv2d has a staged kernel for GPUs and an unstaged one for CPU adapters: run the GPU one here too
// (the direct kernel's 1×1 strided input gradient runs on both).
describe('conv2d GPU kernel variant against a float64 reference', async () => {
  const e = await gpuVariantEngine();
  for (const row of convRows) it(row.name, () => checkConv(e, row));
});

interface PoolRow {
  name: string;
  x: number[];
  kind: PoolKind;
  k: number;
  stride?: number;
  pad?: number;
  nhwc?: boolean;
}

const poolRows: PoolRow[] = [
  { name: 'maxPool2d 3×3 stride 2 pad 1 (ResNet stem)', x: [2, 3, 9, 11], kind: 'max', k: 3, stride: 2, pad: 1 },
  { name: 'maxPool2d 2×2 on odd sizes (floor mode)', x: [2, 5, 9, 11], kind: 'max', k: 2 },
  { name: 'maxPool2d 3×3 stride 1 pad 1', x: [1, 3, 7, 6], kind: 'max', k: 3, stride: 1, pad: 1 },
  { name: 'avgPool2d 3×3 stride 2 pad 1', x: [2, 3, 9, 11], kind: 'avg', k: 3, stride: 2, pad: 1 },
  { name: 'avgPool2d 3×3 stride 2 pad 1, countIncludePad false', x: [2, 3, 9, 11], kind: 'avg-exclude-pad', k: 3, stride: 2, pad: 1 },
  { name: 'avgPool2d 2×2 on odd sizes', x: [2, 5, 9, 11], kind: 'avg', k: 2 },
  { name: 'maxPool2d of a non-contiguous input', x: [2, 9, 11, 5], kind: 'max', k: 3, stride: 2, pad: 1, nhwc: true },
  { name: 'avgPool2d of a non-contiguous input', x: [2, 9, 11, 5], kind: 'avg', k: 3, stride: 2, pad: 1, nhwc: true },
];

describe('pooling against a float64 reference', async () => {
  const e = await engine();
  for (const row of poolRows) {
    it(row.name, async () => {
      const rng = new Rng(row.name.length * 104729 + row.k);
      const x = randNd(row.x, rng);
      const opts = { kernel: row.k, stride: row.stride, padding: row.pad };
      const gpu = (t: Tensor) => {
        const v = row.nhwc ? channelsLast(t) : t;
        return row.kind === 'max' ? ops.maxPool2d(v, opts) : ops.avgPool2d(v, { ...opts, countIncludePad: row.kind === 'avg' });
      };
      const ref = (t: Nd) => pool2dRef(row.nhwc ? nhwcToNchw(t) : t, row.kind, row.k, row.stride ?? row.k, row.pad ?? 0);
      const got = await e.scopeAsync(async () => fromGpu(gpu(toGpu(e, x))));
      expectClose(got, ref(x), { rtol: 1e-5, atol: 1e-6 }, row.name);
      await gradcheck(e, [x], gpu, ref, { maxProbes: 48 });
    });
  }

  it('maxPool2d sends the gradient of a tied window to its first element', async () => {
    // A constant input ties every window; PyTorch picks the first element in window order.
    const grad = await e.scopeAsync(async () => {
      const x = e.tensor(new Float32Array(16).fill(0.5), [1, 1, 4, 4], { requiresGrad: true });
      ops.maxPool2d(x, { kernel: 3, stride: 1, padding: 1 }).backward(e.ones([1, 1, 4, 4]));
      return fromGpu(x.grad!);
    });
    // Window of output (y, x) starts at input (max(y-1, 0), max(x-1, 0)).
    const expected = Nd.zeros([1, 1, 4, 4]);
    for (let y = 0; y < 4; y++) for (let z = 0; z < 4; z++) expected.data[Math.max(y - 1, 0) * 4 + Math.max(z - 1, 0)] += 1;
    expectClose(grad, expected, {}, 'tied max-pool gradient');
  });

  it('globalAvgPool and adaptiveAvgPool2d', async () => {
    const rng = new Rng(5);
    const x = randNd([2, 5, 6, 6], rng);
    const planeMeans = pool2dRef(x, 'avg', 6, 1, 0);
    const thirds = pool2dRef(x, 'avg', 2, 2, 0);
    await e.scopeAsync(async () => {
      const t = toGpu(e, x);
      expectClose(await fromGpu(ops.globalAvgPool(t)), planeMeans.reshape([2, 5]), {}, 'globalAvgPool');
      expectClose(await fromGpu(ops.adaptiveAvgPool2d(t, 1)), planeMeans, {}, 'adaptiveAvgPool2d 1');
      expectClose(await fromGpu(ops.adaptiveAvgPool2d(t, 3)), thirds, {}, 'adaptiveAvgPool2d 3');
      expect(() => ops.adaptiveAvgPool2d(t, 4)).toThrow(/adaptiveAvgPool2d: output size 4/);
      expect(() => ops.maxPool2d(t, { kernel: 3, padding: 2 })).toThrow(/maxPool2d: padding 2/);
    });
    await gradcheck(e, [x], (t) => ops.globalAvgPool(t), (t) => planeMeansOf(t));
  });
});

function planeMeansOf(x: Nd): Nd {
  const [n, c] = x.shape;
  return pool2dRef(x, 'avg', x.shape[2], 1, 0).reshape([n, c]);
}
