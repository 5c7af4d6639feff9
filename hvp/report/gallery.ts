// The hard-pair gallery: logged views rendered again from their logged parameters with the training
// renderer (the whole logged batch in one renderViews call per group, as the step rendered it, so the
// pixels are the ones trained on), each sample's score matrix as a heat map with the chosen pair
// framed, and the pair the random selection would have drawn at that step beside it.

import sharp from 'sharp';
import type { Engine } from '../../engine/index.js';
import { packBatch } from '../data/loader.js';
import type { Dataset } from '../data/types.js';
import { drawLimit, randomChoice } from '../select/index.js';
import type { TrainConfig } from '../train/config.js';
import { stepRng } from '../train/rng.js';
import { renderViews, uploadBatch } from '../views/index.js';
import { allCombinations, candidateView, chosenRow, stepRows } from './pairs.js';
import type { StepRecord } from './run.js';
import { heatmapSvg, type Mark } from './svg.js';

/** Output size of view group g: the global views', then the local crops'. */
export function groupSize(c: TrainConfig, g: number): number {
  return g === 0 ? c.size : c.localSize;
}

export interface RenderedGroup {
  /** [n, C, S, S] normalised, exactly as renderViews returned it. */
  data: Float32Array;
  channels: number;
  size: number;
}

/** Every candidate view of a logged step, rendered from its parameters and the images at its logged indices. */
export async function renderLoggedStep(engine: Engine, dataset: Dataset, rec: StepRecord, c: TrainConfig): Promise<RenderedGroup[]> {
  if (!rec.indices) throw new Error(`step ${rec.step} of the log records no dataset indices: its views cannot be rendered again`);
  const images = await Promise.all(rec.indices.map((i) => dataset.read(i)));
  const batch = packBatch(images, rec.indices);
  const src = uploadBatch(engine, batch);
  try {
    const out: RenderedGroup[] = [];
    for (const [g, params] of rec.views.entries()) {
      const size = groupSize(c, g);
      const t = renderViews(engine, src, params, { size, mean: dataset.mean, std: dataset.std });
      out.push({ data: Float32Array.from((await t.toArray()) as Float32Array), channels: batch.channels, size });
      t.dispose();
    }
    return out;
  } finally {
    src.dispose();
  }
}

/** The combination (row index) the random selection draws for each sample at this step: its own seeded stream. */
export async function randomRows(engine: Engine, c: TrainConfig, rec: StepRecord): Promise<Int32Array> {
  const rng = stepRng(c.seed, rec.step, 1);
  const all = allCombinations(c);
  // The random selection draws from the same stream after the --limit draw, as the step does.
  if (c.limit > 0 && c.limit < all.length) drawLimit(all.length, c.limit, rng);
  const t = randomChoice(engine, rec.selected.length, stepRows(rec, c).length, rng);
  const out = Int32Array.from((await t.toArray()) as Int32Array);
  t.dispose();
  return out;
}

/** View `v` of a rendered group as a PNG data URL, un-normalised and enlarged (nearest) to at least `minSide` px. */
export async function viewPng(group: RenderedGroup, v: number, mean: readonly number[], std: readonly number[], minSide = 84): Promise<string> {
  const { channels: C, size: S, data } = group;
  const px = Buffer.alloc(S * S * C);
  const base = v * C * S * S;
  for (let ch = 0; ch < C; ch++) {
    for (let i = 0; i < S * S; i++) px[i * C + ch] = Math.max(0, Math.min(255, Math.round((data[base + ch * S * S + i] * std[ch] + mean[ch]) * 255)));
  }
  const scale = Math.max(1, Math.ceil(minSide / S));
  const png = await sharp(px, { raw: { width: S, height: S, channels: C as 1 | 3 } })
    .resize(S * scale, S * scale, { kernel: 'nearest' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Global candidate index → [group, index in group]. */
function locate(rec: StepRecord, v: number): [number, number] {
  const batch = rec.selected.length;
  let at = v;
  for (let g = 0; g < rec.views.length; g++) {
    const n = rec.views[g].length / batch;
    if (at < n) return [g, at];
    at -= n;
  }
  throw new Error(`step ${rec.step}: no candidate view ${v}`);
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** One gallery card: sample b of a logged step. */
export async function galleryCard(rec: StepRecord, b: number, c: TrainConfig, rendered: RenderedGroup[], random: Int32Array, ds: Dataset): Promise<string> {
  const rows = stepRows(rec, c);
  const scores = rec.candidate_scores![b];
  const chosen = chosenRow(rec, rows, b);
  const rnd = random[b];
  const batch = rec.selected.length;
  const count = rec.views.reduce((s, g) => s + g.length / batch, 0);
  const pick = (r: number) => new Set(rows[r]?.slice(0, 2) ?? []);
  const inChosen = pick(chosen);
  const inRandom = pick(rnd);
  const imgs: string[] = [];
  for (let v = 0; v < count; v++) {
    const [g, k] = locate(rec, v);
    const url = await viewPng(rendered[g], k * batch + b, ds.mean, ds.std);
    const p = candidateView(rec, v, b);
    const cls = [inChosen.has(v) ? 'chosen' : '', inRandom.has(v) ? 'random' : ''].join(' ').trim();
    const tip = `view ${v}: crop ${p.crop.h}x${p.crop.w} at (${p.crop.i}, ${p.crop.j})${p.flip ? ', flipped' : ''}${p.jitter ? ', jitter' : ''}${p.gray ? ', gray' : ''}${p.blurSigma > 0 ? ', blur' : ''}${p.solarize ? ', solarised' : ''}`;
    imgs.push(`<figure class="${cls}"><img src="${url}" alt="${esc(tip)}" title="${esc(tip)}"><figcaption>${v}</figcaption></figure>`);
  }
  const c0 = [...new Set(rows.map((r) => r[0]))].sort((a, z) => a - z);
  const c1 = [...new Set(rows.map((r) => r[1]))].sort((a, z) => a - z);
  const cells: (number | null)[][] = c0.map(() => c1.map(() => null));
  rows.forEach((r, i) => (cells[c0.indexOf(r[0])][c1.indexOf(r[1])] = scores[i]));
  const mark = (r: number, kind: Mark['kind']): Mark => ({ row: c0.indexOf(rows[r][0]), col: c1.indexOf(rows[r][1]), kind });
  const marks = [mark(rnd, 'random'), ...(chosen >= 0 ? [mark(chosen, 'chosen')] : [])];
  const fmtRow = (r: number) => `views ${rows[r].join(', ')} (score ${scores[r].toPrecision(3)})`;
  return `<div class="card"><div class="cardhead">step ${rec.step} · sample ${b} · image #${rec.indices![b]}</div>
<div class="views">${imgs.join('')}</div>
<div class="pair">${heatmapSvg(cells, c0.map(String), c1.map(String), marks)}
<p><span class="key chosen"></span>chosen (${c.select}): ${chosen >= 0 ? fmtRow(chosen) : 'not among the scored rows'}<br><span class="key random"></span>random selection would draw: ${fmtRow(rnd)}</p></div></div>`;
}
