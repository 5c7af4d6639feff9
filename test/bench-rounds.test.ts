// Peers timed in rounds alternating with ours: the harness calls ours and the peer strictly in turn,
// and the record's ratio is the median of the per-round ratios with its min and max, on the clock the
// record compares by; one round gives exactly the single-measurement record; a peer's figures are
// recorded as peer_<name>. The torchvision peer itself is detected (or says why not) and, where
// python3 has torchvision, reads a small generated folder. Fake sides with fixed
// times: nothing here is timed.

import { describe, expect, it } from 'vitest';
import type { BenchCase, OursTiming } from '../bench/case.js';
import { runCases } from '../bench/main.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeJpegFolder } from '../bench/cases/loader.js';
import { createLoaderPeer, type LoaderPeer } from '../bench/peers/torch-loader.js';
import type { TorchPeer, TorchStepTiming } from '../bench/peers/torch.js';
import { markdownTable, progressLine, toRecord } from '../bench/report.js';
import { interleave, median, mergeTimings, roundsRecord } from '../bench/rounds.js';
import type { Timing, TimingMethod } from '../bench/timing.js';
import type { Engine } from '../engine/index.js';

const timing = (ms: number, method: TimingMethod = 'wall', wallMs = ms): Timing => ({ medianMs: ms, minMs: ms - 1, runsMs: [ms - 1, ms], method, wallMedianMs: wallMs });

/** An engine as runCases sees it: no timestamp-query, so no clock. */
const engine = { backend: { features: new Set<string>() } } as unknown as Engine;

describe('median', () => {
  it('takes the middle value, or the mean of the middle two', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 10])).toBe(3.5);
    expect(() => median([])).toThrow(/nothing/);
  });
});

describe('interleave', () => {
  it('alternates ours and the peer, round by round', async () => {
    const calls: string[] = [];
    const rounds = await interleave(
      3,
      async () => (calls.push('ours'), timing(10)),
      async () => (calls.push('peer'), timing(20)),
    );
    expect(calls).toEqual(['ours', 'peer', 'ours', 'peer', 'ours', 'peer']);
    expect(rounds).toHaveLength(3);
    await expect(interleave(0, async () => timing(1), null)).rejects.toThrow(/positive integer/);
  });
});

describe('roundsRecord', () => {
  const c: BenchCase = { name: 'fake', shape: 's', quick: true, images: 100, ours: async () => timing(1), peer: { name: 'fake-peer', run: async () => timing(1) } };

  it('one round gives exactly the single-measurement record', () => {
    expect(roundsRecord(c, [{ ours: timing(10), peer: timing(25) }])).toEqual(toRecord(c, timing(10), timing(25)));
  });

  it('several rounds: the median of per-round ratios and their spread, not the ratio of medians', () => {
    // Per-round ratios 2, 1, 4 (median 2); the ratio of the medians would be 20 / 10 = 2.0 only by chance,
    // so the peer's times are picked to make it differ: medians ours 10, peer 12 -> 1.2.
    const rounds = [
      { ours: timing(10), peer: { ...timing(20), figures: { cpu_ms_per_image: 3 } } },
      { ours: timing(12), peer: { ...timing(12), figures: { cpu_ms_per_image: 1 } } },
      { ours: timing(2), peer: { ...timing(8), figures: { cpu_ms_per_image: 2.5 } } },
    ];
    const r = roundsRecord(c, rounds);
    // The peer's own figures, each the median of the rounds'.
    expect(r.peer_cpu_ms_per_image).toBe(2.5);
    expect([r.ours_ms, r.peer_ms]).toEqual([10, 12]);
    expect([r.ratio, r.ratio_min, r.ratio_max, r.rounds]).toEqual([2, 1, 4, 3]);
    expect([r.images_per_s, r.peer_images_per_s]).toEqual([10000, 8333.333]);
    expect(progressLine(r)).toContain('fake-peer 12.00 ms (8333.3 img/s)  ratio 2.00x [1.00-4.00]');
    expect(markdownTable([r]).split('\n')[2]).toContain('| 12.0 (fake-peer) | 2.00× [1.00–4.00] |');
  });

  it('compares by wall time in every round when one round lacks timestamps', () => {
    const rounds = [
      { ours: timing(1, 'timestamp-query', 10), peer: timing(2, 'timestamp-query', 30) },
      { ours: timing(1, 'wall', 10), peer: timing(2, 'timestamp-query', 50) },
    ];
    const r = roundsRecord(c, rounds);
    expect(r.timing).toBe('wall');
    expect([r.ours_ms, r.peer_ms, r.ratio, r.ratio_min, r.ratio_max]).toEqual([10, 40, 4, 3, 5]);
    expect(mergeTimings(rounds.map((x) => x.peer)).method).toBe('timestamp-query');
  });

  it("the PyTorch peer's per-round ratio comes from the round's own step of ours", () => {
    const torch = (ms: number): TorchStepTiming => ({ medianMs: ms, minMs: ms, runsMs: [ms], viewsMedianMs: 1, params: 7, threads: 2, version: '1.13' });
    const step: BenchCase = { name: 'step', shape: 's', quick: true, torch: true, ours: async () => timing(1) };
    const ours = (ms: number, t: number, frac: number): OursTiming => ({ ...timing(ms), figures: { frac_views: frac }, torch: torch(t) });
    const r = roundsRecord(step, [{ ours: ours(100, 300, 0.2), peer: null }, { ours: ours(200, 200, 0.4), peer: null }, { ours: ours(150, 600, 0.3) , peer: null }]);
    expect([r.ours_ms, r.torch_ms, r.frac_views]).toEqual([150, 300, 0.3]);
    expect([r.torch_ratio, r.torch_ratio_min, r.torch_ratio_max]).toEqual([3, 1, 4]);
    expect([r.peer, r.ratio]).toEqual([null, null]);
    expect(markdownTable([r]).split('\n')[2]).toContain('| 300.0 | 3.00× [1.00–4.00] |');
    // A round whose peer was skipped makes the record say so rather than mix timed and untimed rounds.
    const skipped = roundsRecord(step, [{ ours: ours(100, 300, 0.2), peer: null }, { ours: { ...timing(100), torch: { skipped: 'crashed' } }, peer: null }]);
    expect([skipped.torch_skipped, skipped.torch_ms, skipped.torch_ratio]).toEqual(['crashed', undefined, undefined]);
  });
});

describe('runCases with rounds', () => {
  it('runs a torchvision-side peer in alternation with ours, and a case without a present peer once', async () => {
    const calls: string[] = [];
    const times = [10, 20, 40];
    let k = 0;
    const loader: BenchCase = {
      name: 'fake loader', shape: 's', quick: true, images: 10,
      ours: async () => (calls.push('ours'), timing(times[k++ % 3])),
      peer: { name: 'torchvision', needs: 'torchvision', run: async () => (calls.push('peer'), timing(40)) },
    };
    const tfjsOnly: BenchCase = { ...loader, name: 'fake kernel', peer: { name: 'tfjs-webgpu', run: async () => (calls.push('tfjs'), timing(1)) } };
    const tv = { python: 'python3', version: '0', epochs: async () => timing(0) } as LoaderPeer;
    const [r, kernel] = await runCases(engine, null, [loader, tfjsOnly], { reps: 1, warmup: 0, rounds: 3 }, () => {}, null, { torchvision: tv });
    expect(calls).toEqual(['ours', 'peer', 'ours', 'peer', 'ours', 'peer', 'ours']);
    // Ratios 4, 2, 1.
    expect([r.peer, r.ratio, r.ratio_min, r.ratio_max, r.rounds]).toEqual(['torchvision', 2, 1, 4, 3]);
    expect([kernel.peer, kernel.rounds]).toEqual([null, undefined]);
  });

  it('a torch case is timed in rounds only when the PyTorch peer is present', async () => {
    let n = 0;
    const step: BenchCase = { name: 'step', shape: 's', quick: true, torch: true, ours: async () => (n++, timing(5)) };
    await runCases(engine, null, [step], { reps: 1, warmup: 0, rounds: 4 });
    expect(n).toBe(1);
    await runCases(engine, null, [step], { reps: 1, warmup: 0, rounds: 4 }, () => {}, {} as TorchPeer);
    expect(n).toBe(5);
  });
});

describe('torchvision loader peer', () => {
  it('gives a reason, not a throw, when no interpreter has torchvision', async () => {
    const r = await createLoaderPeer({ pythons: ['/nonexistent/bin/python3'] });
    expect(r).toEqual({ reason: expect.stringMatching(/\/nonexistent\/bin\/python3: not found.*apt-get install python3-torchvision/) });
  });

  it('times epochs of a generated folder and reports its CPU time per image and cores kept busy', async () => {
    const found = await createLoaderPeer();
    if (!('epochs' in found)) {
      console.warn(`bench-rounds: torchvision peer not run: ${found.reason}`);
      return;
    }
    const root = await mkdtemp(join(tmpdir(), 'hvp-tv-peer-'));
    try {
      // Large enough that the worker's CPU time spans many of /proc's 10 ms ticks.
      await writeJpegFolder(root, { images: 16, width: 500, height: 375, classes: 2 });
      const t = await found.epochs({ root, batch: 4, size: 256, workers: 1, warmup: 1, reps: 2 });
      expect(t.runsMs).toHaveLength(2);
      expect(t.runsMs.every((ms) => ms > 0)).toBe(true);
      expect(t.medianMs).toBe([...t.runsMs].sort((a, b) => a - b)[1]);
      expect(t.figures?.cpu_ms_per_image).toBeGreaterThan(0);
      // The same CPU time over the epochs' wall time: how many cores the DataLoader kept busy.
      const wallMs = t.runsMs.reduce((a, b) => a + b, 0);
      expect((t.figures!.cpu_cores * wallMs) / (16 * 2)).toBeCloseTo(t.figures!.cpu_ms_per_image, 9);
      await expect(found.epochs({ root: join(root, 'missing'), batch: 4, size: 8, workers: 0, warmup: 0, reps: 1 })).rejects.toThrow(/torch_loader\.py: FileNotFoundError/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
