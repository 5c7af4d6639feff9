// `hvp report`: one self-contained HTML page about one or more runs: curves, the final table, the
// hard-pair gallery, what makes a pair hard, and the cost of the HVP step.

import type { Engine } from '../../engine/index.js';
import type { Dataset } from '../data/types.js';
import { trainDataset } from '../train/loop.js';
import { galleryCard, randomRows, renderLoggedStep } from './gallery.js';
import { curveDivs, renderPage } from './html.js';
import { collectPairs, featureValues, FEATURES, mean, histogram, type PairsOverTraining } from './pairs.js';
import { readRun, type Run } from './run.js';
import { costSection, curves, finalTable } from './sections.js';
import { fractionSvg, histogramSvg, type Series } from './svg.js';

export { readRun, type Run } from './run.js';

export interface ReportOptions {
  /** Training data per run directory, instead of opening the configured data set (tests). */
  datasets?: Record<string, Dataset>;
  /** Logged steps in the gallery (spread over the run) and samples per step. */
  gallerySteps?: number;
  gallerySamples?: number;
}

const BINS = 20;

async function runDataset(run: Run, opts: ReportOptions): Promise<Dataset | string> {
  const given = opts.datasets?.[run.dir];
  if (given) return given;
  try {
    return await trainDataset(run.config);
  } catch (e) {
    return `its training data cannot be opened (${(e as Error).message})`;
  }
}

/** [height, width] of dataset images by index: the data set's size, or each image's own. */
async function sourceSizes(ds: Dataset, run: Run): Promise<Map<number, readonly [number, number]>> {
  const out = new Map<number, readonly [number, number]>();
  for (const rec of run.steps) {
    for (const i of rec.indices ?? []) {
      if (out.has(i)) continue;
      if (ds.size) out.set(i, ds.size);
      else {
        const img = await ds.read(i);
        out.set(i, [img.height, img.width]);
      }
    }
  }
  return out;
}

/** Up to n items spread evenly over `items`, first and last included. */
function spread<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  return Array.from({ length: n }, (_, k) => items[Math.round((k * (items.length - 1)) / (n - 1))]);
}

async function gallery(engine: Engine, run: Run, ds: Dataset, opts: ReportOptions): Promise<string> {
  const withScores = run.steps.filter((s) => s.candidate_scores?.length && s.indices);
  if (!withScores.length) return `<p class="note">${run.label}: no step logged every candidate's score (--log-samples 0, or an older log).</p>`;
  const cards: string[] = [];
  for (const rec of spread(withScores, opts.gallerySteps ?? 4)) {
    const rendered = await engine.scopeAsync(() => renderLoggedStep(engine, ds, rec, run.config));
    const random = await randomRows(engine, run.config, rec);
    const samples = Math.min(opts.gallerySamples ?? 2, rec.candidate_scores!.length);
    for (let b = 0; b < samples; b++) cards.push(await galleryCard(rec, b, run.config, rendered, random, ds));
  }
  return `<h3>${run.label}</h3><div class="cards">${cards.join('\n')}</div>`;
}

function pairSection(run: Run, pairs: PairsOverTraining): string {
  const { early, late } = pairs;
  const charts: string[] = [];
  const rows: string[] = [];
  for (const f of FEATURES) {
    const vals = {
      chosenEarly: featureValues(f, early.chosen),
      chosenLate: featureValues(f, late.chosen),
      allEarly: featureValues(f, early.all),
      allLate: featureValues(f, late.all),
    };
    const series = (h: (v: number[]) => number[]): Series[] => [
      { label: 'chosen, early', color: '#0057b8', values: h(vals.chosenEarly) },
      { label: 'chosen, late', color: '#d1495b', values: h(vals.chosenLate) },
      { label: 'all candidates, early', color: '#0057b8', dashed: true, values: h(vals.allEarly) },
      { label: 'all candidates, late', color: '#d1495b', dashed: true, values: h(vals.allLate) },
    ];
    charts.push(f.binary ? fractionSvg(f.label, series((v) => v)) : histogramSvg(f.label, series((v) => histogram(v, f.range[0], f.range[1], BINS)), f.range));
    const m = (v: number[]) => (Number.isFinite(mean(v)) ? mean(v).toFixed(3) : '–');
    rows.push(`<tr><td>${f.label}</td><td>${m([...vals.allEarly, ...vals.allLate])}</td><td>${m(vals.chosenEarly)}</td><td>${m(vals.chosenLate)}</td></tr>`);
  }
  const n = early.chosen.length + late.chosen.length;
  return `<h3>${run.label}</h3><p class="note">${n} selections of ${early.all.length + late.all.length} candidate pairs over the logged steps; early = steps up to ${pairs.split}, late = after.</p>
<table><tr><th>mean of</th><th>all candidates</th><th>chosen, early</th><th>chosen, late</th></tr>${rows.join('')}</table>
<div class="grid">${charts.join('\n')}</div>`;
}

export async function makeReport(engine: Engine, dirs: readonly string[], opts: ReportOptions = {}): Promise<string> {
  if (!dirs.length) throw new Error('hvp report: give at least one run directory');
  const runs = await Promise.all(dirs.map((d) => readRun(d)));
  // Runs of one recipe over several seeds: name each by its seed too.
  const shared = new Set(runs.map((r) => r.label).filter((l, i, all) => all.indexOf(l) !== i));
  for (const r of runs) if (shared.has(r.label)) r.label = `${r.label} · seed ${r.config.seed}`;
  const galleries: string[] = [];
  const pairParts: string[] = [];
  for (const run of runs.filter((r) => r.config.select !== 'random')) {
    const ds = await runDataset(run, opts);
    if (typeof ds === 'string') {
      galleries.push(`<p class="note">${run.label}: ${ds}; the gallery and pair statistics need it.</p>`);
      continue;
    }
    galleries.push(await gallery(engine, run, ds, opts));
    const sizes = await sourceSizes(ds, run);
    pairParts.push(pairSection(run, collectPairs(run, (i) => sizes.get(i)!)));
  }
  const charts = curves(runs);
  const sections = [
    { title: 'Curves', html: curveDivs(charts) },
    { title: 'Final accuracy', html: finalTable(runs) },
    {
      title: 'Hard pairs',
      html: `<p class="note">Candidate views rendered again from the logged parameters by the training renderer (the pixels trained on). Solid frame: the pair chosen; dashed: the pair the random selection would draw at that step. Heat map: each candidate pair's score (higher = harder), rows and columns the pair's two views.</p>${galleries.join('\n') || '<p class="note">No HVP run among these.</p>'}`,
    },
    { title: 'What makes a pair hard', html: pairParts.join('\n') || '<p class="note">No HVP run among these.</p>' },
    { title: 'Cost', html: costSection(runs) },
  ];
  const intro = `<p>${runs.map((r) => `<b>${r.label}</b> (${r.dir}: ${r.config.arch}, batch ${r.config.batchSize}, ${r.steps.length ? r.steps[r.steps.length - 1].step + 1 : 0} steps)`).join('<br>')}</p>`;
  return renderPage({ title: 'HVP report', intro, sections, curves: charts });
}
