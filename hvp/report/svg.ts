// Small inline SVG charts drawn on the server side (histograms, fractions, heat maps, stacked bars):
// static pictures need no script to show, and the report stays one file that opens offline.

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  values: number[];
}

function legend(series: readonly Series[], x: number, y: number): string {
  return series
    .map((s, i) => {
      const yy = y + 13 * i;
      return `<line x1="${x}" y1="${yy - 4}" x2="${x + 16}" y2="${yy - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/><text x="${x + 20}" y="${yy}" font-size="10">${esc(s.label)}</text>`;
    })
    .join('');
}

/** Fractions per bin over [lo, hi] of each series, as step lines. */
export function histogramSvg(title: string, series: readonly Series[], range: [number, number], w = 340, h = 190): string {
  const pad = { l: 34, r: 8, t: 18, b: 22 };
  const ph = h - pad.t - pad.b - 13 * Math.ceil(series.length / 2);
  const pw = w - pad.l - pad.r;
  const top = Math.max(1e-9, ...series.flatMap((s) => s.values));
  const bins = series[0]?.values.length ?? 1;
  const X = (k: number) => pad.l + (k / bins) * pw;
  const Y = (v: number) => pad.t + ph - (v / top) * ph;
  const paths = series.map((s) => {
    const d = s.values.map((v, k) => `${k === 0 ? 'M' : 'L'}${X(k).toFixed(1)},${Y(v).toFixed(1)}H${X(k + 1).toFixed(1)}`).join('');
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`;
  });
  const half = Math.ceil(series.length / 2);
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">
<text x="${pad.l}" y="12" font-size="11" font-weight="bold">${esc(title)}</text>
<line x1="${pad.l}" y1="${pad.t + ph}" x2="${pad.l + pw}" y2="${pad.t + ph}" stroke="#888"/><line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + ph}" stroke="#888"/>
<text x="${pad.l}" y="${pad.t + ph + 11}" font-size="9">${fmt(range[0])}</text><text x="${pad.l + pw}" y="${pad.t + ph + 11}" font-size="9" text-anchor="end">${fmt(range[1])}</text>
<text x="${pad.l - 3}" y="${pad.t + 8}" font-size="9" text-anchor="end">${(100 * top).toFixed(0)}%</text>
${paths.join('\n')}
${legend(series.slice(0, half), pad.l, h - 13 * half + 8)}${legend(series.slice(half), pad.l + pw / 2, h - 13 * (series.length - half) + 8)}
</svg>`;
}

/** One bar per series: the fraction of 0/1 values that are 1. */
export function fractionSvg(title: string, series: readonly Series[], w = 340, h = 150): string {
  const pad = { l: 150, r: 40, t: 20, b: 6 };
  const bh = (h - pad.t - pad.b) / Math.max(1, series.length);
  const bars = series.map((s, i) => {
    const f = s.values.length ? s.values.reduce((a, v) => a + v, 0) / s.values.length : 0;
    const y = pad.t + i * bh;
    const bw = Math.max(1, f * (w - pad.l - pad.r));
    return `<text x="${pad.l - 4}" y="${y + bh * 0.65}" font-size="10" text-anchor="end">${esc(s.label)}</text><rect x="${pad.l}" y="${y + 2}" width="${bw.toFixed(1)}" height="${(bh - 4).toFixed(1)}" fill="${s.color}"${s.dashed ? ' fill-opacity="0.45"' : ''}/><text x="${pad.l + bw + 3}" y="${y + bh * 0.65}" font-size="10">${(100 * f).toFixed(1)}%</text>`;
  });
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><text x="4" y="12" font-size="11" font-weight="bold">${esc(title)}</text>${bars.join('')}</svg>`;
}

/** White (low) to dark red (high). */
function heat(t: number): string {
  const c = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${c(255, 165)},${c(247, 15)},${c(236, 21)})`;
}

export interface Mark {
  row: number;
  col: number;
  kind: 'chosen' | 'random';
}

/** A score matrix (null cells empty) with the chosen cell framed solid and the random draw's dashed. */
export function heatmapSvg(cells: (number | null)[][], rowLabels: string[], colLabels: string[], marks: readonly Mark[], cell = 34): string {
  const pad = { l: 26, t: 16 };
  const vals = cells.flat().filter((v): v is number => v !== null);
  const lo = Math.min(...vals);
  const hi = Math.max(...vals);
  const w = pad.l + cell * colLabels.length + 4;
  const h = pad.t + cell * rowLabels.length + 4;
  const parts: string[] = [];
  colLabels.forEach((l, c) => parts.push(`<text x="${pad.l + c * cell + cell / 2}" y="11" font-size="10" text-anchor="middle">${esc(l)}</text>`));
  rowLabels.forEach((l, r) => parts.push(`<text x="${pad.l - 4}" y="${pad.t + r * cell + cell / 2 + 3}" font-size="10" text-anchor="end">${esc(l)}</text>`));
  cells.forEach((row, r) =>
    row.forEach((v, c) => {
      const x = pad.l + c * cell;
      const y = pad.t + r * cell;
      if (v === null) {
        parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="#eee"/>`);
        return;
      }
      const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${heat(t)}"><title>${v}</title></rect>`);
      parts.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 3}" font-size="8.5" text-anchor="middle" fill="${t > 0.6 ? '#fff' : '#000'}">${fmt(v)}</text>`);
    }),
  );
  for (const m of marks) {
    const dash = m.kind === 'random' ? ' stroke-dasharray="4 3"' : '';
    const color = m.kind === 'chosen' ? '#0057b8' : '#222';
    parts.push(`<rect x="${pad.l + m.col * cell + 1.5}" y="${pad.t + m.row * cell + 1.5}" width="${cell - 3}" height="${cell - 3}" fill="none" stroke="${color}" stroke-width="3"${dash}/>`);
  }
  return `<svg class="heat" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${parts.join('')}</svg>`;
}

export interface StackedBar {
  label: string;
  parts: { name: string; value: number; color: string }[];
}

/** Horizontal stacked bars on one scale (ms per step by phase). */
export function stackedBarsSvg(title: string, bars: readonly StackedBar[], unit: string, w = 640): string {
  const pad = { l: 190, r: 70, t: 22 };
  w = Math.max(w, pad.l + 150 * 5);
  const bh = 26;
  const names = [...new Map(bars.flatMap((b) => b.parts.map((p) => [p.name, p.color] as const))).entries()];
  const h = pad.t + bh * bars.length + 24;
  const top = Math.max(1e-9, ...bars.map((b) => b.parts.reduce((s, p) => s + p.value, 0)));
  const scale = (w - pad.l - pad.r) / top;
  const parts = bars.map((b, i) => {
    let x = pad.l;
    const y = pad.t + i * bh;
    const total = b.parts.reduce((s, p) => s + p.value, 0);
    const rects = b.parts.map((p) => {
      const r = `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${Math.max(0, p.value * scale).toFixed(1)}" height="${bh - 6}" fill="${p.color}"><title>${esc(p.name)}: ${fmt(p.value)} ${unit}</title></rect>`;
      x += p.value * scale;
      return r;
    });
    return `<text x="${pad.l - 4}" y="${y + bh * 0.62}" font-size="10" text-anchor="end">${esc(b.label)}</text>${rects.join('')}<text x="${x + 4}" y="${y + bh * 0.62}" font-size="10">${fmt(total)} ${unit}</text>`;
  });
  const key = names.map(([n, c], k) => `<rect x="${pad.l + k * 150}" y="${h - 14}" width="10" height="10" fill="${c}"/><text x="${pad.l + k * 150 + 13}" y="${h - 5}" font-size="10">${esc(n)}</text>`);
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><text x="4" y="13" font-size="11" font-weight="bold">${esc(title)}</text>${parts.join('')}${key.join('')}</svg>`;
}
