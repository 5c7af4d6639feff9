// The launch path's guarantees: engines share no launch state (a chain on one engine gives the same
// bits whether or not another engine's ops and backward run between its ops), and a launch that
// throws leaves its engine usable, with no buffer taken from the pool and none held by the scratch.

import { describe, expect, it } from 'vitest';
import { defineKernel, Engine, ops, Rng, type Tensor } from '../engine/index.js';
import { engine, gpuVariantEngine, randNd, toGpu } from './helpers.js';

/** One training-like chain as steps run one at a time, so two engines' steps can be interleaved. */
function chain(e: Engine, seed: number): { s: Record<string, Tensor>; steps: (() => void)[]; results: () => Promise<number[][]> } {
  const s: Record<string, Tensor> = {};
  const steps = [
    () => {
      const rng = new Rng(seed);
      s.x = toGpu(e, randNd([6, 12], rng), true);
      s.w = toGpu(e, randNd([12], rng), true);
      s.b = toGpu(e, randNd([12], rng), true);
    },
    // Broadcast operands, then a strided (transposed) one: both map.ts layouts.
    () => (s.y = ops.add(ops.mul(s.x, s.w), s.b)),
    () => (s.z = ops.gelu(ops.add(s.y, ops.transpose(ops.reshape(s.y, [12, 6]), 0, 1).reshape([6, 12])))),
    () => (s.n = ops.layerNorm(s.z, s.w, s.b)),
    () => (s.m = ops.matmul(s.n, ops.transpose(s.x, 0, 1))),
    () => (s.loss = ops.sum(ops.mul(s.m, s.m))),
    () => s.loss.backward(),
  ];
  const results = async () => {
    const out = [await s.loss.toArray(), await s.x.grad!.toArray(), await s.w.grad!.toArray(), await s.b.grad!.toArray()].map((a) => [...a]);
    for (const t of Object.values(s)) t.dispose();
    for (const t of [s.x, s.w, s.b]) t.grad!.dispose();
    return out;
  };
  return { s, steps, results };
}

async function alone(e: Engine, seed: number): Promise<number[][]> {
  const c = chain(e, seed);
  for (const step of c.steps) step();
  return c.results();
}

describe('two engines', () => {
  it('give each the same bits interleaved as alone, a backward on one between ops on the other', async () => {
    const a = await engine();
    const b = await gpuVariantEngine();
    const wantA = await alone(a, 1);
    const wantB = await alone(b, 2);
    const ca = chain(a, 1);
    const cb = chain(b, 2);
    // B runs three steps behind A: A's backward (the last step) falls between B's ops, and every
    // other step alternates between the engines.
    const lag = 3;
    for (let i = 0; i < ca.steps.length + lag; i++) {
      if (i < ca.steps.length) ca.steps[i]();
      if (i >= lag) cb.steps[i - lag]();
    }
    expect(await ca.results()).toEqual(wantA);
    expect(await cb.results()).toEqual(wantB);
  });

  it('give each the same bits when one runs a backward inside the other\'s backward', async () => {
    const a = await engine();
    const b = await gpuVariantEngine();
    const wantA = await alone(a, 3);
    const wantB = await alone(b, 4);
    const ca = chain(a, 3);
    const cb = chain(b, 4);
    for (const step of ca.steps.slice(0, -1)) step();
    for (const step of cb.steps.slice(0, -1)) step();
    expect(ca.s.loss.size).toBe(1);
    // An identity on A (its gradient passes through unchanged) whose backward runs B's whole
    // backward walk in the middle of A's.
    let ran = false;
    const hooked = ops.add(ca.s.loss, 0);
    const node = hooked.node!;
    const rule = node.backward;
    node.backward = (g) => {
      cb.steps[cb.steps.length - 1]();
      ran = true;
      return rule(g);
    };
    hooked.backward();
    expect(ran).toBe(true);
    hooked.dispose();
    expect(await ca.results()).toEqual(wantA);
    expect(await cb.results()).toEqual(wantB);
  });
});

const scale = defineKernel({
  name: 'test_scale',
  source: '#include "grid"\n@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n  let i = flat_index(gid);\n  if (i < u.n) { out[i] = u.k * x[i]; }\n}',
  workgroupSize: 64,
  uniforms: { n: 'u32', row_width: 'u32', k: 'f32' },
  inputs: { x: 'f32' },
  outputs: { out: 'f32' },
});

/** The buffers that the scratch of `owner` on `e` still holds (none, between launches). */
function heldBuffers(e: Engine, owner: object): unknown[] {
  const s = e.backend.scratchFor(owner, () => ({ inputBuffers: [], outputBuffers: [] })) as { inputBuffers: unknown[][]; outputBuffers: unknown[][] };
  return [...s.inputBuffers.flat(), ...s.outputBuffers.flat()].filter((b) => b !== undefined);
}

describe('a launch that throws', () => {
  it('leaves the engine usable, nothing taken from the pool and no buffer held', async () => {
    const e = await engine();
    const x = e.tensor([1, 2, 3, 4]);
    const out = e.empty([4]);
    const g = scale.grid(4);
    const before = e.backend.memory();
    // A bad uniform (n cannot be negative), then a grid past the device's limit: both are found
    // after the tensors' buffers were gathered for the dispatch.
    expect(() => scale.launch({ inputs: [x], outputs: [out], uniforms: { n: -1, row_width: g.rowWidth, k: 2 }, workgroups: g.workgroups })).toThrow(
      /uniform 'n' \(u32\) cannot hold -1/,
    );
    expect(heldBuffers(e, scale)).toEqual([]);
    expect(() => scale.launch({ inputs: [x], outputs: [out], uniforms: { n: 4, row_width: g.rowWidth, k: 2 }, workgroups: [1e6] })).toThrow(
      /exceeds \d+ per dimension/,
    );
    expect(heldBuffers(e, scale)).toEqual([]);
    expect(e.backend.memory()).toEqual(before);
    scale.launch({ inputs: [x], outputs: [out], uniforms: { n: 4, row_width: g.rowWidth, k: 2 }, workgroups: g.workgroups });
    expect([...(await out.toArray())]).toEqual([2, 4, 6, 8]);
    x.dispose();
    out.dispose();
  });

  it('in an elementwise op returns its output to the pool', async () => {
    const e = await engine();
    // Nine axes that no merge can join (each operand broadcasts along every other one): past the
    // elementwise kernel's rank limit, found once the output exists.
    const a = e.ones([2, 1, 2, 1, 2, 1, 2, 1, 2]);
    const b = e.ones([1, 2, 1, 2, 1, 2, 1, 2, 1]);
    await e.sync();
    const before = e.backend.memory();
    expect(() => ops.add(a, b)).toThrow(/add: rank 9 exceeds 8/);
    expect(e.backend.memory().inUse).toBe(before.inUse);
    expect(e.backend.memory().bytesInUse).toBe(before.bytesInUse);
    // The engine goes on.
    const sum = ops.add(a, 2);
    expect([...(await sum.toArray())]).toEqual(new Array(32).fill(3));
    for (const t of [a, b, sum]) t.dispose();
  });
});
