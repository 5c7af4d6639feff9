// The public kernel API (engine/kernel.ts): uniform packing by WGSL's layout rules, the generated
// declarations, a toy kernel on tensors against a float64 reference, and the errors of a bad launch.

import { describe, expect, it } from 'vitest';
import { defineKernel, Engine, Rng, uniformStruct } from '../engine/index.js';
import { kernelHeader, uniformLayout } from '../engine/kernel.js';
import { engine, expectClose, gpuVariantEngine } from './helpers.js';
import { Nd } from './ref.js';

// out[i] = scale · x[off + i·stride] + shift[0] + bias[i mod 4], for i < n: every uniform type is read.
const AXPB = {
  name: 'test_axpb',
  source: /* wgsl */ `
#include "grid"
@compute @workgroup_size(WG_X)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
  let src = u32(i32(u.off) + i32(i) * u.stride.x);
  out[i] = u.scale * x[src] + f32(u.shift) + u.bias[i % 4u] * f32(u.stride.y);
}`,
  workgroupSize: 64,
  uniforms: { n: 'u32', scale: 'f32', off: 'i32', shift: 'i32', stride: 'vec2<i32>', row_width: 'u32', bias: 'vec4<f32>' },
  inputs: { x: 'f32' },
  outputs: { out: 'f32' },
} as const;
const axpb = defineKernel(AXPB);

describe('uniform packing', () => {
  it('lays out mixed scalars and vectors with their alignment', () => {
    const layout = uniformLayout('t', { a: 'u32', b: 'vec2<f32>', c: 'i32', d: 'vec4<u32>', e: 'f32' });
    expect(layout.fields.map((f) => [f.name, f.offset])).toEqual([['a', 0], ['b', 8], ['c', 16], ['d', 32], ['e', 48]]);
    expect(layout.size).toBe(64);
  });

  it('packs the bytes of each type, little-endian', () => {
    const k = defineKernel({
      name: 'test_pack',
      source: '@compute @workgroup_size(1) fn main() {}',
      workgroupSize: 1,
      uniforms: { n: 'u32', scale: 'f32', off: 'i32', v: 'vec2<u32>', flag: 'u32', w: 'vec4<f32>' },
      inputs: {},
      outputs: {},
    });
    const bytes = k.pack({ n: 7, scale: 0.5, off: -3, v: [1, 4294967295], flag: true, w: [1, -2, 0.25, 3] });
    const expected = new ArrayBuffer(48);
    const dv = new DataView(expected);
    dv.setUint32(0, 7, true);
    dv.setFloat32(4, 0.5, true);
    dv.setInt32(8, -3, true);
    // v: vec2 aligned to 8 → offset 16; flag at 24; w: vec4 aligned to 16 → offset 32.
    dv.setUint32(16, 1, true);
    dv.setUint32(20, 4294967295, true);
    dv.setUint32(24, 1, true);
    [1, -2, 0.25, 3].forEach((x, i) => dv.setFloat32(32 + 4 * i, x, true));
    expect([...bytes]).toEqual([...new Uint8Array(expected)]);
  });

  it('packs the same bytes after a rejected pack that had written part of the block', () => {
    const uniforms = { a: 'u32', b: 'f32', c: 'i32', v: 'vec4<u32>', s: 'array<vec4<f32>, 1>' } as const;
    const k = defineKernel({ name: 'test_repack', source: '', workgroupSize: 1, uniforms, inputs: {}, outputs: {} });
    const good = { a: 3, b: -1.5, c: -7, v: [1, 2, 3, 4], s: [0.5, 0.25] };
    const first = [...k.pack(good)];
    // Fields before the bad lane are written before the fast path gives up; the checked path then throws.
    expect(() => k.pack({ a: 9, b: 9, c: 9, v: [5, 6, -1, 8], s: [1, 2, 3, 4] })).toThrow(/uniform 'v' \(vec4<u32>\) cannot hold -1/);
    expect(() => k.pack({ ...good, extra: 1 } as typeof good)).toThrow(/not declared: extra/);
    expect(() => k.pack({ a: 3, b: -1.5, c: -7, v: [1, 2, 3, 4] } as typeof good)).toThrow(/missing s/);
    expect([...k.pack(good)]).toEqual(first);
    const words = new DataView(k.pack(good).buffer);
    expect([words.getUint32(0, true), words.getFloat32(4, true), words.getInt32(8, true)]).toEqual([3, -1.5, -7]);
    expect([32, 36, 40, 44].map((o) => words.getFloat32(o, true))).toEqual([0.5, 0.25, 0, 0]);
  });

  it('rejects values a field cannot hold', () => {
    const k = defineKernel({ name: 'test_range', source: '', workgroupSize: 1, uniforms: { n: 'u32', i: 'i32', v: 'vec2<f32>' }, inputs: {}, outputs: {} });
    expect(() => k.pack({ n: -1, i: 0, v: [0, 0] })).toThrow(/'test_range': uniform 'n' \(u32\) cannot hold -1/);
    expect(() => k.pack({ n: 1.5, i: 0, v: [0, 0] })).toThrow(/uniform 'n'/);
    expect(() => k.pack({ n: 0, i: 2 ** 31, v: [0, 0] })).toThrow(/uniform 'i' \(i32\)/);
    expect(() => k.pack({ n: 0, i: 0, v: [0] })).toThrow(/uniform 'v' \(vec2<f32>\) takes 2 numbers/);
  });

  it('packs arrays of vec4 at 16-byte alignment, zero past the values given', () => {
    const uniforms = { rank: 'u32', shape: 'array<vec4<u32>, 2>', tail: 'u32' } as const;
    const layout = uniformLayout('t', uniforms);
    expect(layout.fields.map((f) => [f.name, f.offset])).toEqual([['rank', 0], ['shape', 16], ['tail', 48]]);
    expect(layout.size).toBe(64);
    const k = defineKernel({ name: 'test_array', source: '', workgroupSize: 1, uniforms, inputs: {}, outputs: {} });
    const words = new Uint32Array(k.pack({ rank: 3, shape: [5, 6, 7], tail: 9 }).buffer);
    expect([...words]).toEqual([3, 0, 0, 0, 5, 6, 7, 0, 0, 0, 0, 0, 9, 0, 0, 0]);
    expect(() => k.pack({ rank: 9, shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], tail: 0 })).toThrow(/uniform 'shape' \(array<vec4<u32>, 2>\) takes at most 8 numbers/);
    // The block is reused by every pack: a shorter array after a longer one leaves zeros, not the old lanes.
    k.pack({ rank: 8, shape: [1, 2, 3, 4, 5, 6, 7, 8], tail: 1 });
    expect([...new Uint32Array(k.pack({ rank: 1, shape: [4], tail: 2 }).buffer)]).toEqual([1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
    expect(() => defineKernel({ name: 'b', source: '', workgroupSize: 1, uniforms: {}, inputs: { x: 'array<vec4<u32>, 2>' as 'u32' }, outputs: {} })).toThrow(
      /binding 'x' has type 'array<vec4<u32>, 2>'/,
    );
  });
});

describe('generated WGSL', () => {
  it('declares the uniform struct in declaration order', () => {
    expect(uniformStruct({ n: 'u32', scale: 'f32', mean: 'vec4<f32>' })).toBe('struct Uniforms {\n  n: u32,\n  scale: f32,\n  mean: vec4<f32>,\n}\n');
    expect(uniformStruct({})).toBe('');
  });

  it('declares bindings from 1: inputs read-only, then outputs read_write', () => {
    const h = kernelHeader({ n: 'u32' }, { a: 'f32', idx: 'i32' }, { out: 'u32' });
    expect(h).toContain('@group(0) @binding(0) var<uniform> u: Uniforms;');
    expect(h).toContain('@group(0) @binding(1) var<storage, read> a: array<f32>;');
    expect(h).toContain('@group(0) @binding(2) var<storage, read> idx: array<i32>;');
    expect(h).toContain('@group(0) @binding(3) var<storage, read_write> out: array<u32>;');
    expect(h).toContain('const WG_X = ${WG_X}u;');
    expect(h).toContain('const WG = WG_X * WG_Y * WG_Z;');
  });

  it('rejects names the generated code uses and unknown types', () => {
    const base = { source: '', workgroupSize: 1, inputs: {}, outputs: {} };
    expect(() => defineKernel({ ...base, name: 'bad', uniforms: { u: 'u32' } })).toThrow(/'u' cannot name a uniform field/);
    expect(() => defineKernel({ ...base, name: 'bad', uniforms: { n: 'f64' as 'f32' } })).toThrow(/type 'f64'/);
    expect(() => defineKernel({ ...base, name: 'bad', uniforms: {}, inputs: { x: 'f32' }, outputs: { x: 'f32' } })).toThrow(/'x' cannot name a binding/);
    expect(() => defineKernel({ ...base, name: 'bad', uniforms: { a: 'vec4<f32>', b: 'vec4<f32>' }, source: '#include "nope"' })).toThrow(/#include "nope"/);
  });
});

async function runToy(e: Engine): Promise<void> {
  const rng = new Rng(5);
  const len = 1000;
  const xs = Float32Array.from({ length: len }, () => rng.normal());
  const x = e.tensor(xs);
  const [n, off, stride, scale, shift] = [127, 900, -7, 1.5, -2];
  const bias = [0.5, -1, 2, 0.25];
  const out = e.empty([n]);
  const g = axpb.grid(n);
  axpb.launch({
    inputs: [x],
    outputs: [out],
    uniforms: { n, scale, off, shift, stride: [stride, 3], row_width: g.rowWidth, bias },
    workgroups: g.workgroups,
  });
  const ref = new Float64Array(n);
  for (let i = 0; i < n; i++) ref[i] = scale * xs[off + i * stride] + shift + bias[i % 4] * 3;
  expectClose(await out.toArray(), new Nd(ref, [n]), { rtol: 1e-6, atol: 1e-6 });
  x.dispose();
  out.dispose();
}

// One invocation per workgroup, so a launch past 65535 elements needs the second grid dimension.
const iota = defineKernel({
  name: 'test_iota',
  source: '#include "grid"\n@compute @workgroup_size(WG_X) fn main(@builtin(workgroup_id) wid: vec3<u32>) {\n  let i = flat_index(wid);\n  if (i < u.n) { out[i] = i32(i); }\n}',
  workgroupSize: 1,
  uniforms: { n: 'u32', row_width: 'u32' },
  inputs: {},
  outputs: { out: 'i32' },
});

describe('launch', () => {
  it('splits a 1-D launch over a 2-D grid whose rows flat_index joins', async () => {
    expect(axpb.grid(70000)).toEqual({ workgroups: [1094, 1], rowWidth: 1094 * 64 });
    expect(axpb.grid(100000, 'workgroup')).toEqual({ workgroups: [50000, 2], rowWidth: 50000 });
    const e = await engine();
    const n = 70001;
    const out = e.empty([n], 'i32');
    const g = iota.grid(n, 'workgroup');
    expect(g.workgroups[1]).toBe(2);
    iota.launch({ inputs: [], outputs: [out], uniforms: { n, row_width: g.rowWidth }, workgroups: g.workgroups });
    const got = await out.toArray();
    expect(got.every((v, i) => v === i)).toBe(true);
    out.dispose();
  });

  it('runs a declared kernel on tensors (CPU-adapter engine)', async () => runToy(await engine()));
  it('runs a declared kernel on tensors (GPU-variant engine)', async () => runToy(await gpuVariantEngine()));

  it('takes views of any layout for the bindings declared strided', async () => {
    const e = await engine();
    const m = e.tensor([0, 1, 2, 3, 4, 5], [2, 3]);
    const mt = m.transpose(0, 1);  // [3, 2], strides [1, 3]: its row 0 is m's column 0
    const out = e.empty([2]);
    const strided = defineKernel({ ...AXPB, name: 'test_axpb_strided', strided: ['x'] });
    const g = strided.grid(2);
    const u = { n: 2, scale: 1, off: mt.offset, shift: 0, stride: [mt.strides[1], 1], row_width: g.rowWidth, bias: [0, 0, 0, 0] };
    strided.launch({ inputs: [mt], outputs: [out], uniforms: u, workgroups: g.workgroups });
    expect([...(await out.toArray())]).toEqual([0, 3]);
    for (const t of [m, mt, out]) t.dispose();
  });

  it('names the kernel when a uniform is missing or extra', async () => {
    const e = await engine();
    const x = e.zeros([4]);
    const out = e.empty([4]);
    const uniforms = { n: 4, scale: 1, off: 0, shift: 0, stride: [1, 1], row_width: 64, bias: [0, 0, 0, 0] };
    const { row_width: _, ...missing } = uniforms;
    expect(() => axpb.launch({ inputs: [x], outputs: [out], uniforms: missing as typeof uniforms, workgroups: [1] })).toThrow(
      /kernel 'test_axpb': uniforms missing row_width/,
    );
    expect(() => axpb.launch({ inputs: [x], outputs: [out], uniforms: { ...uniforms, extra: 1 } as typeof uniforms, workgroups: [1] })).toThrow(
      /kernel 'test_axpb': uniforms not declared: extra/,
    );
    x.dispose();
    out.dispose();
  });

  it('checks the tensors: count, dtype, contiguity, liveness', async () => {
    const e = await engine();
    const x = e.zeros([4]);
    const out = e.empty([4]);
    const u = { n: 4, scale: 1, off: 0, shift: 0, stride: [1, 1], row_width: 64, bias: [0, 0, 0, 0] };
    expect(() => axpb.launch({ inputs: [x, x], outputs: [out], uniforms: u, workgroups: [1] })).toThrow(/kernel 'test_axpb': expects 1 inputs \(x\), got 2/);
    expect(() => axpb.launch({ inputs: [x], outputs: [], uniforms: u, workgroups: [1] })).toThrow(/expects 1 outputs \(out\), got 0/);
    const idx = e.tensor([1, 2, 3, 4], [4], { dtype: 'i32' });
    expect(() => axpb.launch({ inputs: [idx], outputs: [out], uniforms: u, workgroups: [1] })).toThrow(/binding 'x' takes f32 data/);
    const m = e.zeros([2, 3]);
    const mt = m.transpose(0, 1);
    expect(() => axpb.launch({ inputs: [mt], outputs: [out], uniforms: u, workgroups: [1] })).toThrow(/binding 'x' needs a contiguous tensor/);
    x.dispose();
    expect(() => axpb.launch({ inputs: [x], outputs: [out], uniforms: u, workgroups: [1] })).toThrow(/kernel 'test_axpb' \(binding 'x'\).*disposed/);
    expect(() => defineKernel({ ...AXPB, name: 'bad', strided: ['y'] })).toThrow(/kernel 'bad': strided binding 'y' is not among its bindings \(x, out\)/);
    for (const t of [out, idx, m, mt]) t.dispose();
  });
});

// out = a (+ b where given), with a read as vec4 or f32 per launch: optional and templated bindings.
const SUM = {
  name: 'test_opt_sum',
  source: /* wgsl */ `
@compute @workgroup_size(WG_X)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= u.n) { return; }
  var v = T(a[i]);
#if \${HAS_B}
  v += b[i];
#endif
  out[i] = v;
}`,
  workgroupSize: 64,
  uniforms: { n: 'u32' },
  inputs: { a: { type: '${TA}', dtype: 'f32' }, b: { type: '${TA}', dtype: 'f32', optional: true } },
  outputs: { out: { type: '${TA}', dtype: 'f32' } },
} as const;

describe('optional and per-launch bindings', () => {
  it('declares an optional binding under HAS_<NAME>, later slots as template values', () => {
    const h = kernelHeader({ n: 'u32' }, { a: 'f32', b: { type: 'V', dtype: 'f32', optional: true }, c: 'f32' }, { out: 'f32' });
    expect(h).toContain('@group(0) @binding(1) var<storage, read> a: array<f32>;');
    expect(h).toContain('#if ${HAS_B}\n@group(0) @binding(${B_B}) var<storage, read> b: array<V>;\n#endif');
    expect(h).toContain('@group(0) @binding(${B_C}) var<storage, read> c: array<f32>;');
    expect(h).toContain('@group(0) @binding(${B_OUT}) var<storage, read_write> out: array<f32>;');
  });

  it('runs with and without the optional binding, f32 and vec4 element types', async () => {
    const e = await engine();
    const def = defineKernel({ ...SUM, source: 'alias T = ${TA};\n' + SUM.source });
    const a = e.tensor([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = e.tensor([10, 20, 30, 40, 50, 60, 70, 80]);
    for (const [ta, units] of [['f32', 8], ['vec4<f32>', 2]] as const) {
      const withB = e.empty([8]);
      def.launch({ inputs: [a, b], outputs: [withB], uniforms: { n: units }, workgroups: [1], defines: { TA: ta }, key: `${ta}|b` });
      expect([...(await withB.toArray())]).toEqual([11, 22, 33, 44, 55, 66, 77, 88]);
      const alone = e.empty([8]);
      def.launch({ inputs: [a, null], outputs: [alone], uniforms: { n: units }, workgroups: [1], defines: { TA: ta }, key: `${ta}|-` });
      expect([...(await alone.toArray())]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      // The same key again reuses its compiled variant: the binding layout still matches.
      def.launch({ inputs: [a, b], outputs: [alone], uniforms: { n: units }, workgroups: [1], defines: { TA: ta }, key: `${ta}|b` });
      expect([...(await alone.toArray())]).toEqual([11, 22, 33, 44, 55, 66, 77, 88]);
      withB.dispose();
      alone.dispose();
    }
    expect(() => def.launch({ inputs: [null, b], outputs: [a], uniforms: { n: 1 }, workgroups: [1], defines: { TA: 'f32' } })).toThrow(
      /kernel 'test_opt_sum': binding 'a' needs a tensor/,
    );
    a.dispose();
    b.dispose();
  });

  it('names a launch in the profile by its name, and records its work', async () => {
    const e = await engine();
    const x = e.zeros([4]);
    const out = e.empty([4]);
    const g = axpb.grid(4);
    const u = { n: 4, scale: 1, off: 0, shift: 0, stride: [1, 1], row_width: g.rowWidth, bias: [0, 0, 0, 0] };
    await e.sync();
    e.backend.startProfile({ wall: true });
    axpb.launch({ name: 'toy_renamed', inputs: [x], outputs: [out], uniforms: u, workgroups: g.workgroups, flops: 8, bytes: 32 });
    const profile = await e.backend.stopProfile();
    const row = profile.records.find((d) => d.name === 'toy_renamed');
    expect(row).toBeDefined();
    expect([row!.flops, row!.bytes]).toEqual([8, 32]);
    x.dispose();
    out.dispose();
  });
});

// out[i] = 2·x[i] + y[i] (+ bias[i] where given), every tensor read from its own offset: u.off_<name>
// is generated and filled by the launch, and flat_index's row_width by the launch's grid.
const OFFSETS = {
  name: 'test_offsets',
  source: /* wgsl */ `
#include "grid"
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
  var v = 2.0 * x[u.off_x + i] + y[u.off_y + i];
#if \${HAS_BIAS}
  v += bias[u.off_bias + i];
#endif
  out[u.off_out + i] = v;
  size[u.off_size + i] = WG;
}`,
  workgroupSize: 64,
  uniforms: { n: 'u32' },
  inputs: { x: 'f32', y: 'f32', bias: { type: 'f32', dtype: 'f32', optional: true } },
  outputs: { out: 'f32', size: 'u32' },
} as const;

describe('generated offsets, grids and launch-time variants', () => {
  it('generates off_<name> for the bindings the source reads, and row_width for flat_index', () => {
    const k = defineKernel(OFFSETS);
    expect(k.source).toContain('struct Uniforms {\n  n: u32,\n  row_width: u32,\n  off_x: u32,\n  off_y: u32,\n  off_bias: u32,\n  off_out: u32,\n  off_size: u32,\n}');
    expect(k.uniformBytes).toBe(32);
    const plain = defineKernel({ name: 'test_plain', source: 'fn main() { out[0] = x[0]; }', workgroupSize: 1, uniforms: { n: 'u32' }, inputs: { x: 'f32' }, outputs: { out: 'f32' } });
    expect(plain.source).toContain('struct Uniforms {\n  n: u32,\n}');
  });

  it('reads and writes each tensor at its own offset, with or without the optional binding', async () => {
    const e = await engine();
    const rng = new Rng(11);
    const n = 37;
    const data = (len: number) => Float32Array.from({ length: len }, () => rng.normal());
    const xs = data(n + 5);
    const ys = data(n + 8);
    const bs = data(n + 2);
    const base = e.tensor(xs);
    const x = base.slice(0, 5, 5 + n); // offset 5
    const yBase = e.tensor(ys);
    const y = yBase.slice(0, 8, 8 + n); // offset 8
    const bBase = e.tensor(bs);
    const bias = bBase.slice(0, 2, 2 + n);
    const outBase = e.zeros([n + 3]);
    const out = outBase.slice(0, 3, 3 + n);
    const size = e.empty([n], 'i32');
    expect([x.offset, y.offset, bias.offset, out.offset]).toEqual([5, 8, 2, 3]);
    const k = defineKernel({ ...OFFSETS, name: 'test_offsets_run' });
    for (const withBias of [true, false]) {
      k.launch({ inputs: [x, y, withBias ? bias : null], outputs: [out, size], uniforms: { n }, grid: { invocations: n } });
      const got = await outBase.toArray();
      const ref = new Float64Array(n + 3);
      for (let i = 0; i < n; i++) ref[3 + i] = 2 * xs[5 + i] + ys[8 + i] + (withBias ? bs[2 + i] : 0);
      expectClose(got, new Nd(ref, [n + 3]), { rtol: 1e-6, atol: 1e-6 });
    }
    for (const t of [base, x, yBase, y, bBase, bias, outBase, out, size]) t.dispose();
  });

  it('compiles the workgroup size a launch asks for, one pipeline per size, and splits its grid by it', async () => {
    const e = await engine();
    const k = defineKernel({ ...OFFSETS, name: 'test_sizes' });
    const n = 100;
    const x = e.zeros([n]);
    const y = e.zeros([n]);
    const out = e.empty([n]);
    const size = e.empty([n], 'i32');
    const created = () => e.backend.counters.pipelinesCreated;
    const launch = (wg?: number) => k.launch({ inputs: [x, y, null], outputs: [out, size], uniforms: { n }, grid: { invocations: n }, workgroupSize: wg, key: 'k' });
    // A new size compiles a pipeline; a size seen before reuses its own.
    for (const [wg, compiles] of [[undefined, 1], [32, 1], [128, 1], [32, 0], [undefined, 0], [64, 0], [128, 0]] as const) {
      const before = created();
      launch(wg);
      expect(created() - before).toBe(compiles);
      expect([...(await size.toArray())]).toEqual(new Array(n).fill(wg ?? 64));
    }
    // One invocation per workgroup, past 65535 workgroups: the generated row_width joins the grid's rows.
    const iota1 = defineKernel({
      name: 'test_iota_generated',
      source: '#include "grid"\n@compute @workgroup_size(WG_X) fn main(@builtin(workgroup_id) wid: vec3<u32>) {\n  let i = flat_index(wid);\n  if (i < u.n) { out[u.off_out + i] = i32(i); }\n}',
      workgroupSize: 64,
      uniforms: { n: 'u32' },
      inputs: {},
      outputs: { out: 'i32' },
    });
    const m = 70001;
    const big = e.empty([m], 'i32');
    iota1.launch({ inputs: [], outputs: [big], uniforms: { n: m }, grid: { workgroups: m }, workgroupSize: 1 });
    expect((await big.toArray()).every((v, i) => v === i)).toBe(true);
    for (const t of [x, y, out, size, big]) t.dispose();
  });

  it('names the kernel and the wrong use in its errors', async () => {
    const e = await engine();
    expect(() => defineKernel({ ...OFFSETS, name: 'bad_off', uniforms: { n: 'u32', off_x: 'u32' } })).toThrow(
      /kernel 'bad_off': uniform 'off_x' is generated from binding 'x'/,
    );
    expect(() => defineKernel({ ...OFFSETS, name: 'bad_wg', workgroupSize: [16, 32] })).toThrow(/kernel 'bad_wg': workgroup size 16x32x1 must be .* at most 256/);
    const k = defineKernel({ ...OFFSETS, name: 'test_offsets_errors' });
    const n = 8;
    const x = e.zeros([n]);
    const yBase = e.zeros([n + 2]);
    const y = yBase.slice(0, 2, 2 + n);
    const y0 = e.zeros([n]);
    const out = e.empty([n]);
    const size = e.empty([n], 'i32');
    const args = { inputs: [x, y0, null], outputs: [out, size], uniforms: { n } };
    const vec = defineKernel({
      name: 'test_vec_offset',
      source: '@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n  if (gid.x < u.n) { out[gid.x] = y[u.off_y / 4u + gid.x]; }\n}',
      workgroupSize: 64,
      uniforms: { n: 'u32' },
      inputs: { y: 'vec4<f32>' },
      outputs: { out: 'vec4<f32>' },
    });
    expect(() => vec.launch({ inputs: [y], outputs: [out], uniforms: { n: 2 }, workgroups: [1] })).toThrow(
      /kernel 'test_vec_offset': binding 'y' reads vec4s, so its offset must be a multiple of 4; got .* at offset 2/,
    );
    expect(() => k.launch({ ...args, uniforms: { n, off_x: 0 } as { n: number }, grid: { invocations: n } })).toThrow(
      /kernel 'test_offsets_errors': uniforms not declared: off_x; off_x is filled by the launch/,
    );
    const plain = defineKernel({
      name: 'test_no_offset',
      source: '@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n  if (gid.x < u.n) { out[gid.x] = x[gid.x]; }\n}',
      workgroupSize: 64,
      uniforms: { n: 'u32' },
      inputs: { x: 'f32' },
      outputs: { out: 'f32' },
    });
    expect(() => plain.launch({ inputs: [y], outputs: [out], uniforms: { n }, workgroups: [1] })).toThrow(
      /kernel 'test_no_offset': binding 'x' is read from its buffer's start \(the kernel reads no u.off_x\), got .* at offset 2/,
    );
    expect(() => k.launch(args)).toThrow(/kernel 'test_offsets_errors': a launch gives workgroups or a grid/);
    expect(() => k.launch({ ...args, grid: { invocations: n }, workgroups: [1] })).toThrow(/workgroups or a grid, not both/);
    expect(() => k.launch({ ...args, grid: { invocations: -1 } })).toThrow(/kernel 'test_offsets_errors': grid of -1 invocations/);
    expect(() => k.launch({ ...args, grid: { invocations: n }, workgroupSize: 512 })).toThrow(/kernel 'test_offsets_errors': workgroup size 512x1x1/);
    // The launch that threw kept nothing: the next one runs.
    k.launch({ ...args, grid: { invocations: n } });
    expect([...(await size.toArray())]).toEqual(new Array(n).fill(64));
    for (const t of [x, yBase, y, y0, out, size]) t.dispose();
  });
});
