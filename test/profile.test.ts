// The dispatch profiler: one record per dispatch, per-kernel totals that add up, a Chrome trace with
// the fields its viewers need, GPU timestamps in chunks past one query set, and the wall-clock replay.

import { describe, expect, it } from 'vitest';
import { ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { chromeTrace, kernelTable, type Profile } from '../engine/profile.js';
import { engine } from './helpers.js';

/** A small training-like workload: matmul, broadcast add, relu, reduction, backward. */
function workload(e: Engine, rng: Rng): void {
  e.scope(() => {
    const x = e.randn([9, 13], rng);
    const w = e.randn([13, 5], rng);
    w.requiresGrad = true;
    const b = e.randn([5], rng);
    const loss = ops.sum(ops.relu(ops.add(ops.matmul(x, w), b)));
    loss.backward();
    w.grad!.dispose();
    w.grad = null;
  });
}

async function profiled(e: Engine, wall: boolean, run: () => void): Promise<{ profile: Profile; dispatches: number }> {
  await e.sync();
  const d0 = e.backend.counters.dispatches;
  e.backend.startProfile({ wall });
  run();
  const profile = await e.backend.stopProfile();
  return { profile, dispatches: e.backend.counters.dispatches - d0 };
}

describe('dispatch profiler', () => {
  for (const wall of [false, true]) {
    it(`${wall ? 'wall-clock replay' : 'default clock'}: one record per dispatch, totals that add up, a valid trace`, async () => {
      const e = await engine();
      const { profile, dispatches } = await profiled(e, wall, () => workload(e, new Rng(1)));
      expect(profile.clock).toBe(wall || !e.backend.features.has('timestamp-query') ? 'wall' : 'timestamp-query');
      expect(dispatches).toBeGreaterThan(5);
      expect(profile.records.length).toBe(dispatches);
      for (const r of profile.records) {
        expect(r.durUs).toBeGreaterThanOrEqual(0);
        expect(r.startUs).toBeGreaterThanOrEqual(0);
      }
      expect(Math.min(...profile.records.map((r) => r.startUs))).toBe(0);

      const rows = kernelTable(profile.records);
      expect(rows.reduce((n, r) => n + r.dispatches, 0)).toBe(dispatches);
      for (const row of rows) {
        const mine = profile.records.filter((r) => r.name === row.name);
        let us = 0;
        for (const r of mine) us += r.durUs;
        expect(row.dispatches).toBe(mine.length);
        expect(row.totalMs).toBe(us / 1e3);
        expect(row.meanUs).toBe(us / mine.length);
      }
      expect(rows.reduce((s, r) => s + r.share, 0)).toBeCloseTo(1, 9);
      const mm = profile.records.find((r) => r.name === 'matmul')!;
      expect(mm.flops).toBe(2 * 9 * 13 * 5);
      // A dispatch can take under the clock's resolution (0 us): the rate is then absent, never Infinity.
      const mmRecords = profile.records.filter((r) => r.name === 'matmul');
      const mmUs = mmRecords.reduce((s, r) => s + r.durUs, 0);
      const mmRow = rows.find((r) => r.name === 'matmul')!;
      if (mmUs > 0) expect(mmRow.gflops).toBe(mmRecords.reduce((s, r) => s + r.flops!, 0) / mmUs / 1e3);
      else expect(mmRow.gflops).toBeUndefined();

      const trace = JSON.parse(JSON.stringify(chromeTrace(profile, { adapter: e.description }))) as {
        traceEvents: Record<string, unknown>[];
        otherData: Record<string, unknown>;
      };
      expect(trace.otherData.clock).toBe(profile.clock);
      expect(trace.traceEvents.length).toBe(dispatches);
      trace.traceEvents.forEach((ev, i) => {
        expect(ev.ph).toBe('X');
        expect(ev.name).toBe(profile.records[i].name);
        expect(ev.ts).toBe(profile.records[i].startUs);
        expect(ev.dur).toBe(profile.records[i].durUs);
        expect(typeof ev.pid).toBe('number');
        expect(typeof ev.tid).toBe('number');
        const args = ev.args as Record<string, unknown>;
        const [x, y, z] = profile.records[i].workgroups;
        expect(args.workgroups).toBe(`${x}x${y}x${z}`);
        expect(args.defines).toEqual(profile.records[i].defines);
      });
    });
  }

  it('more dispatches than one timestamp query set holds are all timed, and results are unchanged', async () => {
    const e = await engine();
    const n = 2100; // 4200 timestamps: past WebGPU's 4096 per query set
    const chain = () => {
      let h = e.tensor([0.5, -1, 2], [3]);
      for (let i = 0; i < n; i++) {
        const next = ops.add(h, 1e-3);
        h.dispose();
        h = next;
      }
      return h;
    };
    const plain = await chain().toArray();
    let h: Tensor | null = null;
    const { profile, dispatches } = await profiled(e, false, () => {
      h = chain();
    });
    expect(dispatches).toBe(n);
    expect(profile.records.length).toBe(n);
    expect(profile.records.every((r) => r.name === 'add' && r.durUs >= 0)).toBe(true);
    expect(Array.from(await h!.toArray())).toEqual(Array.from(plain));
    h!.dispose();
  });

  it('stopProfile without startProfile, or a second startProfile, errors', async () => {
    const e = await engine();
    await expect(e.backend.stopProfile()).rejects.toThrow(/no profile is running/);
    e.backend.startProfile();
    expect(() => e.backend.startProfile()).toThrow(/already running/);
    await e.backend.stopProfile();
  });
});
