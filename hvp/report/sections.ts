// The report's run-level sections: curves over steps with the runs overlaid, the final accuracy
// table, and the cost of a step by phase (HVP against random views when both runs are given).

import type { CurveChart } from './html.js';
import { mean } from './pairs.js';
import type { DemoSummary, Run } from './run.js';
import { stackedBarsSvg } from './svg.js';

function curve(id: string, title: string, runs: readonly Run[], points: (r: Run) => [number, number][], opts: Partial<CurveChart> = {}): CurveChart {
  const per = runs.map((r) => new Map(points(r)));
  const x = [...new Set(per.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  return { id, title, x, series: runs.map((r, i) => ({ label: r.label, values: x.map((s) => per[i].get(s) ?? null) })), ...opts };
}

export function curves(runs: readonly Run[]): CurveChart[] {
  const out = [
    curve('c-loss', 'training loss', runs, (r) => r.steps.map((s) => [s.step, s.loss])),
    curve('c-lr', 'learning rate', runs, (r) => r.steps.map((s) => [s.step, s.lr])),
    curve('c-ips', 'images / s (since the run started)', runs, (r) => r.steps.map((s) => [s.step, s.images_per_s])),
  ];
  if (runs.some((r) => r.knn.length)) {
    out.push(curve('c-knn', 'k-NN top-1 (monitor: k = 20, T = 0.07)', runs, (r) => r.knn.map((k) => [k.step, k.top1]), { points: true, percent: true }));
  }
  return out;
}

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(2)}%`);

/** The demo summary's key for a run directory's name. */
const SUMMARY_KEY: Record<string, string> = { hvp: 'hvp', random: 'random_views' };

export function finalTable(runs: readonly Run[]): string {
  const summary = runs.find((r) => r.summary)?.summary ?? null;
  const rows: string[] = [];
  const row = (name: string, monitor: string, knn: string, linear: string) => rows.push(`<tr><td>${name}</td><td>${monitor}</td><td>${knn}</td><td>${linear}</td></tr>`);
  if (summary?.knn) {
    row('raw pixels', '–', pct(summary.knn.raw_pixels), pct(summary.linear?.raw_pixels));
    // A multi-seed demo keeps one summary per seed, each with that seed's random-init encoder.
    const bySeed = new Map<unknown, DemoSummary>();
    for (const r of runs) if (r.summary?.knn && !bySeed.has(r.summary.seed)) bySeed.set(r.summary.seed, r.summary);
    for (const [seed, s] of bySeed) {
      row(bySeed.size > 1 ? `random-init encoder · seed ${seed}` : 'random-init encoder', '–', pct(s.knn!.random_init), pct(s.linear?.random_init));
    }
  }
  for (const r of runs) {
    const last = r.knn[r.knn.length - 1];
    const key = SUMMARY_KEY[r.name] ?? r.name;
    row(r.label, last ? `${pct(last.top1)} (step ${last.step})` : '–', pct(r.summary?.knn?.[key]), pct(r.summary?.linear?.[key]));
  }
  const sizes = summary ? `<p class="note">Final k-NN: ${summary.knn_train ?? '?'} training images as the memory bank, ${summary.knn_test ?? '?'} test images (the demo's summary.json). The monitor uses its own smaller subsets (--knn-bank, --knn-queries).</p>` : '';
  return `<table><tr><th>features</th><th>k-NN monitor, last</th><th>k-NN top-1, final</th><th>linear probe</th></tr>${rows.join('')}</table>${sizes}`;
}

const PHASES: [string, string, string][] = [
  ['views', 'views', '#8ecae6'],
  ['selectionForward', 'selection forward + scores', '#d1495b'],
  ['select', 'select', '#e9a03b'],
  ['gather', 'gather', '#6a4c93'],
  ['train', 'training step', '#2a9d8f'],
];

/** Mean ms per phase over the logged steps after the first (whose time includes compiling kernels). */
export function phaseMeans(run: Run): Record<string, number> | null {
  const timed = run.steps.filter((s) => s.times_ms && s.step > 0);
  if (!timed.length) return null;
  return Object.fromEntries(PHASES.map(([k]) => [k, mean(timed.map((s) => s.times_ms![k] ?? 0))]));
}

export function costSection(runs: readonly Run[]): string {
  const timed = runs.map((r) => ({ r, t: phaseMeans(r) })).filter((x): x is { r: Run; t: Record<string, number> } => x.t !== null);
  if (!timed.length) return '<p class="note">No phase times in these logs (logs written before they were recorded).</p>';
  const bars = timed.map(({ r, t }) => ({ label: r.label, parts: PHASES.map(([k, name, color]) => ({ name, value: t[k], color })) }));
  const total = (t: Record<string, number>) => Object.values(t).reduce((s, v) => s + v, 0);
  const hvp = timed.find(({ r }) => r.config.select !== 'random');
  const rnd = timed.find(({ r }) => r.config.select === 'random');
  let ratio = '';
  if (hvp && rnd) {
    const ips = (r: Run) => r.steps[r.steps.length - 1]?.images_per_s ?? NaN;
    ratio = `<p>HVP step / random step: <b>${(total(hvp.t) / total(rnd.t)).toFixed(2)}×</b> the time (phase sums of logged steps); throughput ${ips(hvp.r).toFixed(1)} vs ${ips(rnd.r).toFixed(1)} images/s (${(ips(rnd.r) / ips(hvp.r)).toFixed(2)}×).</p>`;
  }
  return `${stackedBarsSvg('ms per step by phase (mean over logged steps, GPU-synced)', bars, 'ms')}${ratio}
<p class="note">Logged steps sync the GPU after each phase to time it; other steps run unsynchronised, so images/s is the better measure of the whole run's speed.</p>`;
}
