// Drawing the explorer's results: each image's V views (de-normalised from what the network saw), its
// pair-score matrix as a heat map with the hardest, easiest and random pair marked, those three pairs
// side by side, and the live-training loss curve.

import type { ScoreResult } from './session.js';

export interface Stats {
  mean: readonly number[];
  std: readonly number[];
}

const PICKS = [
  { key: 'hardest', label: 'hardest', colour: '#d62728' },
  { key: 'easiest', label: 'easiest', colour: '#1f77b4' },
  { key: 'random', label: 'random', colour: '#2ca02c' },
] as const;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** View `n` of a result ([V·B, C, S, S], normalised) as a canvas drawn at `zoom` pixels per pixel. */
export function viewCanvas(r: ScoreResult, n: number, stats: Stats, zoom = 3): HTMLCanvasElement {
  const { size: s, channels: c } = r;
  const canvas = el('canvas', 'view');
  canvas.width = s;
  canvas.height = s;
  canvas.style.width = canvas.style.height = `${s * zoom}px`;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(s, s);
  const base = n * c * s * s;
  for (let p = 0; p < s * s; p++) {
    for (let k = 0; k < 3; k++) {
      const ch = Math.min(k, c - 1);
      const v = r.pixels[base + ch * s * s + p] * stats.std[ch] + stats.mean[ch];
      img.data[p * 4 + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
    img.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** Viridis-like ramp: low scores (easy pairs) dark blue, high (hard) yellow. */
function ramp(t: number): string {
  const stops = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const rgb = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${rgb.join(',')})`;
}

/** Image b's V×V pair-score matrix (symmetric; the diagonal has no pair), picks outlined. */
export function heatMap(r: ScoreResult, b: number, cell = 26): HTMLCanvasElement {
  const v = r.views;
  const canvas = el('canvas', 'heat');
  canvas.width = canvas.height = v * cell + 1;
  const ctx = canvas.getContext('2d')!;
  const scores = r.scores[b];
  const lo = Math.min(...scores);
  const hi = Math.max(...scores);
  ctx.fillStyle = '#eee';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  r.rows.forEach(([i, j], k) => {
    ctx.fillStyle = ramp(hi > lo ? (scores[k] - lo) / (hi - lo) : 0.5);
    ctx.fillRect(j * cell, i * cell, cell, cell);
    ctx.fillRect(i * cell, j * cell, cell, cell);
  });
  for (const p of PICKS) {
    const [i, j] = r.rows[r[p.key][b]];
    ctx.strokeStyle = p.colour;
    ctx.lineWidth = 3;
    ctx.setLineDash(p.key === 'random' ? [4, 3] : []);
    ctx.strokeRect(j * cell + 1.5, i * cell + 1.5, cell - 3, cell - 3);
  }
  canvas.title = `pair scores of image ${b}: ${lo.toFixed(4)} (easiest) to ${hi.toFixed(4)} (hardest)`;
  return canvas;
}

/** One row per image: its views, the heat map, and the hardest, easiest and random pairs. */
export function renderResults(container: HTMLElement, r: ScoreResult, stats: Stats, labels: string[]): void {
  container.replaceChildren();
  for (let b = 0; b < r.batch; b++) {
    const row = el('section', 'image-row');
    const views = el('div', 'views');
    views.append(el('h3', '', labels[b] ?? `image ${b}`));
    const grid = el('div', 'grid');
    for (let v = 0; v < r.views; v++) {
      const fig = el('figure');
      fig.append(viewCanvas(r, v * r.batch + b, stats), el('figcaption', '', `view ${v}`));
      grid.append(fig);
    }
    views.append(grid);
    const heat = el('div', 'heat-box');
    heat.append(el('h3', '', 'pair scores'), heatMap(r, b), el('p', 'legend', 'row i, column j: pair (i, j); dark easy, yellow hard'));
    const picks = el('div', 'picks');
    for (const p of PICKS) {
      const k = r[p.key][b];
      const [i, j] = r.rows[k];
      const pair = el('div', 'pair');
      pair.style.borderColor = p.colour;
      pair.append(viewCanvas(r, i * r.batch + b, stats, 2), viewCanvas(r, j * r.batch + b, stats, 2));
      pair.append(el('div', 'pair-label', `${p.label}: views ${i}, ${j} · ${r.scores[b][k].toFixed(4)}`));
      picks.append(pair);
    }
    row.append(views, heat, picks);
    container.append(row);
  }
}

/** The loss of every live step as an SVG polyline with its range. */
export function drawLossCurve(svg: SVGSVGElement, losses: number[]): void {
  const w = 320;
  const h = 120;
  const pad = 28;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const ns = 'http://www.w3.org/2000/svg';
  const text = (x: number, y: number, s: string, anchor = 'start') => {
    const t = document.createElementNS(ns, 'text');
    t.setAttribute('x', String(x));
    t.setAttribute('y', String(y));
    t.setAttribute('text-anchor', anchor);
    t.textContent = s;
    svg.append(t);
  };
  if (losses.length === 0) return text(w / 2, h / 2, 'no steps yet', 'middle');
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const span = hi - lo || 1;
  const x = (i: number) => pad + ((w - pad - 8) * i) / Math.max(1, losses.length - 1);
  const y = (l: number) => 8 + ((h - 24) * (hi - l)) / span;
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', losses.map((l, i) => `${x(i).toFixed(1)},${y(l).toFixed(1)}`).join(' '));
  line.setAttribute('class', 'loss');
  svg.append(line);
  text(2, 12, hi.toFixed(3));
  text(2, h - 16, lo.toFixed(3));
  text(w - 4, h - 2, `step ${losses.length}`, 'end');
}
