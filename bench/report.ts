// Bench records: built from both sides' timings, placed against the run's measured peaks, and
// printed as a progress line per case and a markdown table at the end.

import type { BenchCase, BenchRecord, OursTiming } from './case.js';
import { TORCH } from './peers/torch.js';
import { TFJS } from './cases/common.js';
import { STAMPS_INVALID, type Timing, type TimingMethod } from './timing.js';

/** The case whose GB/s is the run's bandwidth peak, and the one whose best GFLOP/s is its compute peak. */
export const COPY_CASE = 'copy';
export const MATMUL_CASE = 'matmul';

export function toRecord(c: BenchCase, ours: OursTiming, peer: Timing | null): BenchRecord {
  // A ratio compares like with like: GPU timestamps only when every side (and baseline) has them.
  const baselines = Object.entries(ours.baselines ?? {});
  const named: [string, Timing | null][] = [['ours', ours], ['peer', peer], ...baselines];
  const sides = named.filter((s): s is [string, Timing] => s[1] !== null);
  const stamped = sides.every(([, t]) => t.method === 'timestamp-query');
  const invalid = sides.find(([, t]) => t.method === STAMPS_INVALID);
  const timing: TimingMethod = stamped ? 'timestamp-query' : invalid ? STAMPS_INVALID : 'wall';
  const oursMs = stamped ? ours.medianMs : ours.wallMedianMs;
  const peerMs = peer ? (stamped ? peer.medianMs : peer.wallMedianMs) : null;
  const rec: BenchRecord = {
    name: c.name,
    shape: c.shape,
    ours_ms: round(oursMs),
    peer: peer ? c.peer!.name : null,
    peer_ms: peerMs === null ? null : round(peerMs),
    ratio: peerMs === null ? null : round(peerMs / oursMs),
    timing,
    ours_wall_ms: round(ours.wallMedianMs),
    peer_wall_ms: peer ? round(peer.wallMedianMs) : null,
  };
  if (invalid) rec.timing_note = `${invalid[0]}: ${invalid[1].note}`;
  if (c.flops) rec.gflops = round(c.flops / oursMs / 1e6);
  if (c.bytes) rec.gbps = round(c.bytes / oursMs / 1e6);
  if (c.images) rec.images_per_s = round((c.images * 1000) / oursMs);
  if (c.images && peerMs !== null) rec.peer_images_per_s = round((c.images * 1000) / peerMs);
  if (ours.peakBytes !== undefined) rec.peak_mib = round(ours.peakBytes / 2 ** 20);
  for (const [name, t] of baselines) {
    const ms = stamped ? t.medianMs : t.wallMedianMs;
    rec[`${name}_ms`] = round(ms);
    rec[`${name}_ratio`] = round(ms / oursMs);
  }
  for (const [name, v] of Object.entries(ours.figures ?? {})) rec[name] = round(v);
  const torch = ours.torch;
  if (torch && 'skipped' in torch) rec[`${TORCH}_skipped`] = torch.skipped;
  else if (torch) {
    rec[`${TORCH}_ms`] = round(torch.medianMs);
    rec[`${TORCH}_ratio`] = round(torch.medianMs / oursMs);
    rec[`${TORCH}_views_ms`] = round(torch.viewsMedianMs);
    rec[`${TORCH}_params`] = torch.params;
    rec[`${TORCH}_threads`] = torch.threads;
    rec[`${TORCH}_device`] = torch.device ?? 'cpu';
  }
  return rec;
}

/** Fill in of_peak once every record is in (the peaks may come from any case of the run). */
export function addOfPeak(records: BenchRecord[]): void {
  const best = (name: string, key: 'gbps' | 'gflops') =>
    Math.max(0, ...records.filter((r) => r.name === name).map((r) => r[key] ?? 0));
  const bandwidth = best(COPY_CASE, 'gbps');
  const compute = best(MATMUL_CASE, 'gflops');
  for (const r of records) {
    if (r.gbps !== undefined && bandwidth > 0) r.of_peak = round(r.gbps / bandwidth);
    else if (r.gflops !== undefined && compute > 0) r.of_peak = round(r.gflops / compute);
  }
}

/**
 * Three decimals, and four significant digits below 1: three decimals alone would round a positive
 * figure of a tiny case (the GB/s of a few hundred bytes) to 0.
 */
export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  return Math.abs(x) >= 1 ? Math.round(x * 1000) / 1000 : Number(x.toPrecision(4));
}

function throughput(r: BenchRecord): string {
  if (r.gflops !== undefined) return `${r.gflops.toFixed(2)} GFLOP/s`;
  if (r.gbps !== undefined) return `${r.gbps.toFixed(2)} GB/s`;
  if (r.images_per_s !== undefined) {
    const peak = r.peak_mib === undefined ? '' : `, peak ${r.peak_mib.toFixed(0)} MiB`;
    return `${r.images_per_s.toFixed(r.images_per_s < 1 ? 3 : 1)} img/s${peak}`;
  }
  return '';
}

/** A ratio and, for a case timed in rounds, the spread of the rounds' ratios: `1.52x [1.31-1.80]`. */
function ratioText(r: BenchRecord, key: string, times: string, dash: string): string {
  const ratio = (r[key] as number).toFixed(2);
  const [lo, hi] = [r[`${key}_min`], r[`${key}_max`]];
  return typeof lo === 'number' && typeof hi === 'number' ? `${ratio}${times} [${lo.toFixed(2)}${dash}${hi.toFixed(2)}]` : `${ratio}${times}`;
}

/** The peer's time, and its images/s where the case counts images. */
function peerText(r: BenchRecord): string {
  const perS = typeof r.peer_images_per_s === 'number' ? ` (${r.peer_images_per_s.toFixed(1)} img/s)` : '';
  return `${r.peer} ${r.peer_ms!.toFixed(2)} ms${perS}  ratio ${ratioText(r, 'ratio', 'x', '-')}`;
}

/** The PyTorch peer's part of a line: its time and ratio, why it was skipped, or nothing. */
function torchText(r: BenchRecord): string {
  if (typeof r[`${TORCH}_skipped`] === 'string') return `${TORCH}-cpu skipped (${r[`${TORCH}_skipped`]})`;
  const ms = r[`${TORCH}_ms`];
  if (typeof ms !== 'number') return '';
  const device = r[`${TORCH}_device`] ?? 'cpu';
  const amp = typeof r[`${TORCH}_amp_ms`] === 'number' ? `, bf16 ${(r[`${TORCH}_amp_ms`] as number).toFixed(2)} ms` : '';
  return `${TORCH}-${device} ${ms.toFixed(2)} ms  ratio ${ratioText(r, `${TORCH}_ratio`, 'x', '-')}${amp}`;
}

export function progressLine(r: BenchRecord): string {
  const peer = r.peer ? peerText(r) : '';
  const line = `${r.name.padEnd(22)} ${r.shape.padEnd(34)} ours ${r.ours_ms.toFixed(2).padStart(9)} ms  ${throughput(r).padEnd(16)} ${peer}`;
  const torch = torchText(r);
  return torch ? `${line}${peer ? '  ' : ''}${torch}` : line;
}

/**
 * The markdown table of a run; the PyTorch peer's columns appear when some record has them. A peer
 * other than tfjs-webgpu is named in its cell; ratios of cases timed in rounds carry their spread.
 */
export function markdownTable(records: BenchRecord[]): string {
  const torch = records.some((r) => r[`${TORCH}_ms`] !== undefined || r[`${TORCH}_skipped`] !== undefined);
  const torchCells = (r: BenchRecord) => {
    const ms = r[`${TORCH}_ms`];
    return typeof ms === 'number' ? [ms.toFixed(1), ratioText(r, `${TORCH}_ratio`, '×', '–')] : ['–', '–'];
  };
  const rows = records.map((r) =>
    [
      r.name,
      r.shape,
      r.ours_ms.toFixed(1),
      throughput(r),
      r.of_peak === undefined ? '–' : `${(100 * r.of_peak).toFixed(0)}%`,
      r.peer_ms === null ? '–' : r.peer === TFJS ? r.peer_ms.toFixed(1) : `${r.peer_ms.toFixed(1)} (${r.peer})`,
      r.ratio === null ? '–' : ratioText(r, 'ratio', '×', '–'),
      ...(torch ? torchCells(r) : []),
      r.timing,
    ].join(' | '),
  );
  const head = ['case', 'shape', 'ours (ms)', 'throughput', 'of peak', `${TFJS} (ms)`, 'ratio', ...(torch ? [`${TORCH}-cpu (ms)`, `${TORCH} ratio`] : []), 'timing'];
  return [`| ${head.join(' | ')} |`, `|${' --- |'.repeat(head.length)}`, ...rows.map((r) => `| ${r} |`)].join('\n');
}
