// The report's page: one HTML file with its styles, the chart library (uPlot, inlined), the curves'
// data as JSON and a few lines of script that draw them; every picture is an inline SVG or a PNG data
// URL, so the file opens offline from disk.

import uplotCss from 'uplot/dist/uPlot.min.css?raw';
import uplotJs from 'uplot/dist/uPlot.iife.min.js?raw';

/** Colours of runs, in order (curves, bars). */
export const RUN_COLORS = ['#0057b8', '#d1495b', '#2a9d8f', '#e9a03b', '#6a4c93', '#555555'];

export interface CurveChart {
  id: string;
  title: string;
  /** x values (steps) shared by the series. */
  x: number[];
  series: { label: string; values: (number | null)[] }[];
  /** Draw points (sparse curves such as the k-NN monitor's). */
  points?: boolean;
  /** Format the y axis as a percentage. */
  percent?: boolean;
}

/** JSON safe inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

/** Inline script text must not close its element early. */
function scriptText(s: string): string {
  return s.replace(/<\/script/gi, '<\\/script');
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1180px; padding: 0 16px; color: #1b1b1b; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th:first-child, td:first-child { text-align: left; }
.curves { display: flex; flex-wrap: wrap; gap: 12px; } .curve { border: 1px solid #eee; padding: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 8px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; margin: 8px 0; }
.cardhead { font-weight: bold; margin-bottom: 6px; }
.views { display: flex; flex-wrap: wrap; gap: 6px; }
figure { margin: 0; padding: 3px; border: 3px solid transparent; text-align: center; font-size: 11px; }
figure img { display: block; image-rendering: pixelated; }
figure.chosen { border-color: #0057b8; } figure.random { border-style: dashed; border-color: #222; } figure.chosen.random { border-style: double; border-width: 5px; }
.pair { display: flex; gap: 14px; align-items: center; margin-top: 6px; } .pair p { margin: 0; }
.key { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; border: 3px solid #0057b8; }
.key.random { border: 3px dashed #222; }
.note { color: #555; font-size: 13px; }
`;

const DRAW = `
const DATA = JSON.parse(document.getElementById('report-data').textContent);
for (const c of DATA.curves) {
  const el = document.getElementById(c.id);
  const series = [{ label: 'step' }].concat(c.series.map((s, i) => ({
    label: s.label, stroke: DATA.colors[i % DATA.colors.length], width: 1.6, spanGaps: true,
    points: { show: !!c.points, size: 5 },
    value: (u, v) => v == null ? '-' : c.percent ? (100 * v).toFixed(2) + '%' : v.toPrecision(4),
  })));
  const axes = [{ label: 'step' }, { values: (u, vals) => vals.map((v) => c.percent ? (100 * v).toFixed(0) + '%' : v) , size: 56 }];
  new uPlot({ title: c.title, width: 540, height: 260, scales: { x: { time: false } }, series, axes }, [c.x].concat(c.series.map((s) => s.values)), el);
}
`;

export interface Page {
  title: string;
  intro: string;
  sections: { title: string; html: string }[];
  curves: CurveChart[];
}

export function renderPage(p: Page): string {
  const body = p.sections.map((s) => `<h2>${s.title}</h2>\n${s.html}`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${p.title}</title>
<style>${uplotCss}</style><style>${CSS}</style></head>
<body>
<h1>${p.title}</h1>
${p.intro}
${body}
<script id="report-data" type="application/json">${scriptJson({ curves: p.curves, colors: RUN_COLORS })}</script>
<script>${scriptText(uplotJs)}</script>
<script>${DRAW}</script>
</body></html>
`;
}

/** A div for each curve chart (the script draws into it). */
export function curveDivs(curves: readonly CurveChart[]): string {
  return `<div class="curves">${curves.map((c) => `<div class="curve" id="${c.id}"></div>`).join('')}</div>`;
}
