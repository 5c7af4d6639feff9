// Peers timed in rounds interleaved with ours (ours, peer, ours, peer, ...): a peer's time measured
// once moved 2x between runs on a shared machine (PyTorch's step time did), and a ratio of two
// medians taken minutes apart inherits every such drift. Each round pairs one measurement of ours
// with the peer's measurement right after it; the record reports the median of the per-round ratios
// and their spread (the lowest and highest), and ours_ms / peer_ms as the medians of the rounds'.

import type { BenchCase, BenchRecord, OursTiming, PeerTiming } from './case.js';
import type { TorchOutcome, TorchStepTiming } from './peers/torch.js';
import { TORCH } from './peers/torch.js';
import { round, toRecord } from './report.js';
import { STAMPS_INVALID, type Timing } from './timing.js';

export interface Round {
  ours: OursTiming;
  peer: PeerTiming | null;
}

/** `rounds` rounds of `ours()` then `peer()` (when there is one), strictly alternating. */
export async function interleave(rounds: number, ours: () => Promise<OursTiming>, peer: (() => Promise<PeerTiming>) | null): Promise<Round[]> {
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new Error(`rounds must be a positive integer, got ${rounds}`);
  const out: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    const o = await ours();
    const p = peer ? await peer() : null;
    out.push({ ours: o, peer: p });
  }
  return out;
}

/** The median (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Several rounds' timings of one side as one: medians of the rounds' medians, every run kept. */
export function mergeTimings(ts: readonly Timing[]): Timing {
  if (ts.length === 1) return ts[0];
  const stamped = ts.every((t) => t.method === 'timestamp-query');
  const invalid = ts.find((t) => t.method === STAMPS_INVALID);
  const wallMedianMs = median(ts.map((t) => t.wallMedianMs));
  return {
    // A side compared by wall time in any round is compared by wall time in all of them.
    medianMs: stamped ? median(ts.map((t) => t.medianMs)) : wallMedianMs,
    minMs: Math.min(...ts.map((t) => t.minMs)),
    runsMs: ts.flatMap((t) => t.runsMs),
    method: stamped ? 'timestamp-query' : invalid ? STAMPS_INVALID : 'wall',
    wallMedianMs,
    ...(invalid?.note !== undefined ? { note: invalid.note } : {}),
  };
}

function mergeTorch(ts: readonly (TorchOutcome | undefined)[]): TorchOutcome | undefined {
  if (ts.some((t) => t === undefined)) return undefined;
  const skipped = ts.find((t): t is { skipped: string } => 'skipped' in t!);
  if (skipped) return skipped;
  const timed = ts as TorchStepTiming[];
  return { ...timed[0], ...mergeTimings(timed.map((t) => ({ ...t, method: 'wall', wallMedianMs: t.medianMs }))), viewsMedianMs: median(timed.map((t) => t.viewsMedianMs)) };
}

/** Our side over several rounds: timings merged, peak memory the highest, each figure the median. */
export function mergeOurs(os: readonly OursTiming[]): OursTiming {
  if (os.length === 1) return os[0];
  const merged: OursTiming = mergeTimings(os);
  const peaks = os.map((o) => o.peakBytes).filter((b): b is number => b !== undefined);
  if (peaks.length) merged.peakBytes = Math.max(...peaks);
  // A figure or baseline missing from some round (a round that failed part-way) is merged over the rest.
  const present = <T>(key: 'baselines' | 'figures', name: string) =>
    os.map((o) => (o[key] as Record<string, T> | undefined)?.[name]).filter((v): v is T => v !== undefined);
  const names = (key: 'baselines' | 'figures') => [...new Set(os.flatMap((o) => Object.keys(o[key] ?? {})))];
  if (os.some((o) => o.baselines)) merged.baselines = Object.fromEntries(names('baselines').map((n) => [n, mergeTimings(present<Timing>('baselines', n))]));
  if (os.some((o) => o.figures)) merged.figures = Object.fromEntries(names('figures').map((n) => [n, median(present<number>('figures', n))]));
  const torch = mergeTorch(os.map((o) => o.torch));
  if (torch) merged.torch = torch;
  return merged;
}

/**
 * The record of a case timed in `rounds`: with one round exactly toRecord's; with more, the merged
 * timings, `ratio` (and `torch_ratio`) the median of the per-round ratios, `ratio_min`/`ratio_max`
 * (`torch_ratio_min`/`torch_ratio_max`) their spread, and `rounds`.
 */
export function roundsRecord(c: BenchCase, rounds: readonly Round[]): BenchRecord {
  if (rounds.length === 0) throw new Error(`${c.name}: no rounds`);
  const peers = rounds.map((r) => r.peer).filter((p): p is PeerTiming => p !== null);
  const rec = toRecord(c, mergeOurs(rounds.map((r) => r.ours)), peers.length === rounds.length ? mergeTimings(peers) : null);
  if (rec.peer !== null) {
    const names = [...new Set(peers.flatMap((p) => Object.keys(p.figures ?? {})))];
    for (const n of names) rec[`peer_${n}`] = round(median(peers.map((p) => p.figures?.[n]).filter((v): v is number => v !== undefined)));
  }
  if (rounds.length === 1) return rec;
  rec.rounds = rounds.length;
  // Each round's ratio on the clock the record compares by.
  const ms = (t: Timing) => (rec.timing === 'timestamp-query' ? t.medianMs : t.wallMedianMs);
  const spread = (key: string, ratios: number[]) => {
    rec[key] = round(median(ratios));
    rec[`${key}_min`] = round(Math.min(...ratios));
    rec[`${key}_max`] = round(Math.max(...ratios));
  };
  if (rec.peer !== null) spread('ratio', rounds.map((r) => ms(r.peer!) / ms(r.ours)));
  if (typeof rec[`${TORCH}_ms`] === 'number') {
    spread(`${TORCH}_ratio`, rounds.map((r) => (r.ours.torch as TorchStepTiming).medianMs / ms(r.ours)));
  }
  return rec;
}
