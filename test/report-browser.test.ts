// The report in a real browser: a report of two short tiny runs (HVP and random views) opened from
// disk in headless Chromium (Debian's `chromium`, driven by puppeteer-core) renders without console
// errors, and every chart and gallery image has drawn content. Without Chromium the test says why and
// skips (HVP_REQUIRE_BROWSER=1 makes that a failure). HVP_REPORT_HTML checks (and screenshots) an
// existing report instead; HVP_REPORT_SCREENSHOT=FILE.png keeps the screenshot (the README's).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { makeReport } from '../hvp/report/index.js';
import { pretrain } from '../hvp/train/loop.js';
import { haveChromium, launchChromium, openPage, pageErrors } from './browser.js';
import { sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

const hasChromium = haveChromium('report browser test');

async function tinyReport(): Promise<string> {
  const engine = await sharedEngine();
  const dir = mkdtempSync(join(tmpdir(), 'hvp-report-'));
  const ds = syntheticDataset(1);
  const sets = { bank: syntheticDataset(1), queries: syntheticDataset(1) };
  const runs: string[] = [];
  for (const [name, select, views] of [['hvp', 'hardest', 3], ['random', 'random', 2]] as const) {
    const config = tiny({ method: 'simsiam', select, views, trainLimit: 24, epochs: 2, knnEvery: 2, knnBank: 24, knnQueries: 24, out: join(dir, name) });
    await pretrain(config, { engine, dataset: ds, progress: false, knnSets: sets });
    runs.push(config.out);
  }
  const html = await makeReport(engine, runs, { datasets: Object.fromEntries(runs.map((r) => [r, ds])) });
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  return file;
}

describe('hvp report in headless Chromium', () => {
  it.skipIf(!hasChromium)('renders with no console errors; every chart and image has content', async () => {
    const file = resolve(process.env.HVP_REPORT_HTML ?? (await tinyReport()));
    const browser = await launchChromium();
    try {
      const page = await openPage(browser);
      const errors = pageErrors(page);
      await page.setViewport({ width: 1200, height: 900 });
      await page.goto(`file://${file}`, { waitUntil: 'load' });
      const seen = await page.evaluate(() => {
        const canvases = Array.from(document.querySelectorAll('.curve canvas')).map((c) => {
          const cv = c as HTMLCanvasElement;
          const px = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
          let drawn = 0;
          for (let i = 3; i < px.length; i += 4) if (px[i] > 0) drawn++;
          return drawn;
        });
        const svgs = Array.from(document.querySelectorAll('svg.chart, svg.heat')).map((s) => {
          const shapes = Array.from(s.querySelectorAll('path, rect, line')).filter((e) => {
            const b = (e as SVGGraphicsElement).getBBox();
            return b.width > 0 || b.height > 0;
          });
          return shapes.length;
        });
        const images = Array.from(document.querySelectorAll('img')).map((i) => (i.complete ? i.naturalWidth : 0));
        return { curves: document.querySelectorAll('.curve').length, canvases, svgs, images, heatmaps: document.querySelectorAll('svg.heat').length };
      });
      expect(errors).toEqual([]);
      expect(seen.curves).toBe(4);
      expect(seen.canvases).toHaveLength(seen.curves);
      for (const drawn of seen.canvases) expect(drawn).toBeGreaterThan(0);
      expect(seen.heatmaps).toBeGreaterThan(0);
      for (const shapes of seen.svgs) expect(shapes).toBeGreaterThan(0);
      expect(seen.images.length).toBeGreaterThan(0);
      for (const w of seen.images) expect(w).toBeGreaterThan(0);

      const shot = await page.screenshot({ fullPage: true });
      writeFileSync(file.replace(/\.html$/, '.png'), shot);
      const keep = process.env.HVP_REPORT_SCREENSHOT;
      if (keep) {
        // The README's picture: the top of the page, palette PNG to stay small.
        const meta = await sharp(shot).metadata();
        const top = await sharp(shot).extract({ left: 0, top: 0, width: meta.width!, height: Math.min(meta.height!, 1700) }).resize({ width: 900 }).png({ palette: true, colours: 96 }).toBuffer();
        writeFileSync(keep, top);
      }
    } finally {
      await browser.close();
    }
  });
});
