// The bench harness: timestamp timing brackets a run (and falls back to wall time when it cannot, or
// when a timestamp pair cannot be right), records carry the fields, ratios and peaks they promise, and
// the composed tfjs peers compute the same function as our kernels (float64 references), so a ratio
// compares the same work. Whether a device's timestamps come back valid is luck (Dawn quantises
// them, so a short run can read 0): assertions hold for either outcome.

import { beforeAll, describe, expect, it } from 'vitest';
import { ops, Rng, type Engine } from '../engine/index.js';
import { engine, expectClose, randNd } from './helpers.js';
import { Nd, reduce, sumOf, zip } from './ref.js';
import { attentionRef } from './attention-ref.js';
import { engineClock, runCases } from '../bench/main.js';
import { createTfjsPeer, type TfjsPeer } from '../bench/peers/tfjs.js';
import { checkIntervals, chooseRuns, STAMPS_INVALID, timeGpu, type Timing } from '../bench/timing.js';
import { stampIntervals } from '../bench/stamps.js';
import { round, toRecord } from '../bench/report.js';
import { copyCase, vec4Copy } from '../bench/cases/copy.js';
import { layerNormCase, tfjsLayerNorm } from '../bench/cases/kernels-norm.js';
import { matmulCase } from '../bench/cases/matmul.js';
import { attentionCase, tfjsAttention } from '../bench/cases/attention.js';

let e: Engine;
let tfjs: TfjsPeer;

beforeAll(async () => {
  e = await engine();
  tfjs = await createTfjsPeer(e.backend.gpu);
});

/**
 * |a - b| ≤ tol·|b| + 0.0005: records round every number to 3 decimals, and times of 1 µs steps are a
 * few percent of a tiny case's time.
 */
function expectRel(a: number, b: number, tol = 0.05): void {
  expect(Math.abs(a - b), `${a} vs ${b}`).toBeLessThanOrEqual(tol * Math.abs(b) + 0.0005);
}

/** What a side with timestamps may report: timestamps, or wall time because some pair was invalid. */
const STAMPED_OR_INVALID = ['timestamp-query', STAMPS_INVALID];

describe('timestamp checks', () => {
  const wall = [2, 2, 2];

  it('reads (start, end) pairs as signed intervals in ms', () => {
    const ns = BigUint64Array.from([1000n, 1_501_000n, 5n, 5n, 2_000_000n, 1_000_000n, 0n, 2n ** 64n - 1n]);
    const ms = stampIntervals(ns);
    expect(ms.slice(0, 3)).toEqual([1.5, 0, -1]);
    expect(ms[3]).toBeGreaterThan(1e12);
  });

  it('rejects a zero, negative, non-finite or longer-than-wall interval, naming the run', () => {
    expect(checkIntervals([1, 1.5, 2], wall)).toBeNull();
    expect(checkIntervals([1, 0, 1], wall)).toMatch(/run 1: .* 0 ms is not positive/);
    expect(checkIntervals([1, 1, -0.001], wall)).toMatch(/run 2: .* is not positive/);
    expect(checkIntervals([NaN, 1, 1], wall)).toMatch(/run 0: .* NaN ms is not finite/);
    expect(checkIntervals([1, Infinity, 1], wall)).toMatch(/run 1: .* not finite/);
    expect(checkIntervals([1, 2.01, 1], wall)).toMatch(/run 1: .* exceeds the run's wall time 2 ms/);
    expect(checkIntervals([1, 1], wall)).toMatch(/2 timestamp intervals for 3 runs/);
  });

  it('falls back to the wall times when any pair is invalid, and the record says so', () => {
    const wallMs = [3, 1, 2];
    const good = chooseRuns([0.5, 0.25, 0.75], wallMs);
    expect([good.method, good.medianMs, good.minMs, good.wallMedianMs, good.note]).toEqual(['timestamp-query', 0.5, 0.25, 2, undefined]);
    for (const pairs of [[0n, 100n, 7n, 7n, 0n, 50n], [0n, 100n, 9n, 8n, 0n, 50n], [0n, 100n, 0n, 2n ** 64n - 1n, 0n, 50n]]) {
      const gpuMs = stampIntervals(BigUint64Array.from(pairs));
      const t = chooseRuns(gpuMs, wallMs);
      expect([t.method, t.medianMs, t.minMs, t.wallMedianMs, t.runsMs]).toEqual([STAMPS_INVALID, 2, 1, 2, wallMs]);
      expect(t.note).toMatch(/^run 1: /);
    }
    expect(chooseRuns(null, wallMs).method).toBe('wall');

    const c = layerNormCase(8, 12, 'test', true);
    const stamped: Timing = { ...good, wallMedianMs: 4 };
    const rec = toRecord(c, t(STAMPS_INVALID, 2, 2), stamped);
    // One side's invalid stamps put both sides on wall time, so the ratio compares like with like.
    expect([rec.timing, rec.ours_ms, rec.peer_ms, rec.ratio]).toEqual([STAMPS_INVALID, 2, 4, 2]);
    expect(rec.timing_note).toBe('ours: run 0: timestamp interval 0 ms is not positive');
    expect(toRecord(c, t('timestamp-query', 1, 2), stamped).timing).toBe('timestamp-query');
    expect(toRecord(c, t('wall', 2, 2), null).timing).toBe('wall');
  });

  it('keeps a positive figure below 1 positive when it rounds', () => {
    expect([round(0.00042), round(1234.56789), round(0.5), round(0)]).toEqual([0.00042, 1234.568, 0.5, 0]);
  });
});

function t(method: Timing['method'], ms: number, wall: number): Timing {
  const note = method === STAMPS_INVALID ? 'run 0: timestamp interval 0 ms is not positive' : undefined;
  return { medianMs: ms, minMs: ms, runsMs: [ms], method, wallMedianMs: wall, note };
}

describe('timeGpu', () => {
  // A 3-dispatch workload: a matmul and a copy of its result.
  const work = (flushBetween: boolean) => {
    const rng = new Rng(1);
    const a = e.randn([70, 90], rng);
    const b = e.randn([90, 50], rng);
    const run = () => {
      const c = ops.matmul(a, b);
      if (flushBetween) e.backend.flush();
      const d = ops.clone(c);
      return () => [c, d].forEach((t) => t.dispose());
    };
    return { run, free: () => [a, b].forEach((t) => t.dispose()) };
  };

  it('times with GPU timestamps inside the wall interval when the adapter has timestamp-query', async () => {
    const clock = engineClock(e);
    const { run, free } = work(false);
    const t = await timeGpu(run, () => e.sync(), { reps: 5, warmup: 1, clock });
    free();
    if (clock) expect(STAMPED_OR_INVALID).toContain(t.method);
    else expect(t.method).toBe('wall');
    expect(t.runsMs).toHaveLength(5);
    expect(t.minMs).toBeGreaterThan(0);
    // Each accepted GPU interval lies inside its run's wall interval, so the medians are ordered too.
    expect(t.medianMs).toBeLessThanOrEqual(t.wallMedianMs);
    if (t.method === STAMPS_INVALID) expect(t.note).toMatch(/^run \d+: /);
  });

  it('falls back to wall time when a run submits work before the start stamp could be written', async () => {
    const { run, free } = work(true);
    const t = await timeGpu(run, () => e.sync(), { reps: 5, warmup: 1, clock: engineClock(e) });
    free();
    expect(t.method).toBe('wall');
    expect(t.medianMs).toBe(t.wallMedianMs);
  });
});

describe('bench vec4 copy kernel', () => {
  it('copies 1003 vec4 words (4 workgroups, the last partial) bit for bit', async () => {
    const x = e.randn([4012], new Rng(2));
    const out = e.empty([4012]);
    vec4Copy(x, out);
    expect(await out.toArray()).toEqual(await x.toArray());
    const short = e.empty([4008]);
    expect(() => vec4Copy(x, short)).toThrow(/equal-size contiguous/);
    [x, out, short].forEach((t) => t.dispose());
  });
});

describe('runCases', () => {
  it('writes complete records: ratio = peer_ms / ours_ms, throughput and of_peak from the run', async () => {
    const cases = [
      copyCase(5000),
      copyCase(5000, true),
      matmulCase(33, 47, 65, true),
      layerNormCase(37, 50, 'test', true),
      attentionCase({ model: 'test', b: 1, h: 2, n: 9, d: 8, quick: true }, false),
    ];
    const records = await runCases(e, tfjs, cases, { reps: 5, warmup: 1 });
    expect(records.map((r) => r.name)).toEqual(['copy', 'copy', 'matmul', 'layer_norm', 'attention fwd']);
    const stamped = engineClock(e) !== null && tfjs.clock !== null;
    for (const [i, r] of records.entries()) {
      const c = cases[i];
      expect(r.shape).toBe(c.shape);
      if (stamped) expect(STAMPED_OR_INVALID).toContain(r.timing);
      else expect(r.timing).toBe('wall');
      expect(r.ours_ms).toBeGreaterThan(0);
      expect(r.ours_wall_ms).toBeGreaterThan(0);
      expect(r.ours_ms).toBeLessThanOrEqual(r.ours_wall_ms);
      if (c.peer) {
        expect(r.peer).toBe('tfjs-webgpu');
        expectRel(r.ratio!, r.peer_ms! / r.ours_ms);
        expect(r.peer_wall_ms).toBeGreaterThan(0);
      } else {
        expect([r.peer, r.peer_ms, r.ratio, r.peer_wall_ms]).toEqual([null, null, null, null]);
      }
      if (c.flops) expectRel(r.gflops!, c.flops / r.ours_ms / 1e6);
      if (c.bytes) expectRel(r.gbps!, c.bytes / r.ours_ms / 1e6);
    }
    const [clone, vec4, mm, ln, attn] = records;
    const bandwidth = Math.max(clone.gbps!, vec4.gbps!);
    expect(Math.max(clone.of_peak!, vec4.of_peak!)).toBe(1);
    expectRel(clone.of_peak!, clone.gbps! / bandwidth, 0.01);
    expect(mm.of_peak).toBe(1);
    expectRel(ln.of_peak!, ln.gbps! / bandwidth, 0.01);
    expectRel(attn.of_peak!, attn.gflops! / mm.gflops!, 0.01);
  });

  it('leaves of_peak out when the run has no reference case', async () => {
    const [r] = await runCases(e, null, [layerNormCase(8, 12, 'test', true)], { reps: 5, warmup: 0 });
    expect(r.gbps).toBeGreaterThan(0);
    expect(r.of_peak).toBeUndefined();
    expect(r.peer).toBeNull();
  });
});

describe('tfjs peers compute our kernels\' function', () => {
  const read = async (t: { data(): Promise<ArrayLike<number>> }, shape: number[]) => Nd.from(await t.data(), shape);
  const upload = (x: Nd) => tfjs.tf.tensor(Float32Array.from(x.data), x.shape);

  it('layer norm (moments + batchNorm) over rows of 37 x 50', async () => {
    const rng = new Rng(3);
    const [x, w, b] = [randNd([37, 50], rng), randNd([1, 50], rng), randNd([1, 50], rng)];
    const mean = reduce(x, 1, (v) => sumOf(v) / v.length);
    const variance = reduce(zip((a, m) => (a - m) ** 2, x, mean), 1, (v) => sumOf(v) / v.length);
    const ref = zip((a, m, s, g, o) => ((a - m) / Math.sqrt(s + 1e-5)) * g + o, x, mean, variance, w, b);
    const inputs = [x, w, b].map(upload);
    const y = tfjsLayerNorm(tfjs.tf, inputs[0], inputs[1], inputs[2]);
    expectClose(await read(y, ref.shape), ref, { rtol: 1e-4, atol: 1e-4 }, 'tfjs layer norm');
    [y, ...inputs].forEach((t) => t.dispose());
  });

  it('attention (matMul + softmax + matMul) at [B·H, N, d] = [3, 17, 20]', async () => {
    const rng = new Rng(4);
    const [q, k, v] = [0, 1, 2].map(() => randNd([3, 17, 20], rng));
    const ref = attentionRef(q, k, v);
    const inputs = [q, k, v].map(upload);
    const scale = tfjs.tf.scalar(1 / Math.sqrt(20));
    const y = tfjsAttention(tfjs.tf, inputs[0], inputs[1], inputs[2], scale);
    expectClose(await read(y, ref.shape), ref, { rtol: 1e-4, atol: 2e-5 }, 'tfjs attention');
    [y, scale, ...inputs].forEach((t) => t.dispose());
  });
});
