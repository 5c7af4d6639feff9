// The explorer (`hvp serve`) in a real browser: its bundle builds for the browser with nothing Node-only
// in it; in headless Chromium (Debian's, WebGPU on SwiftShader) the page loads a small `hvp pretrain`
// checkpoint and a few images, and its views' pair scores, picks and live training losses equal the
// Node engine's (Dawn) on the same checkpoint bytes, images, seed and view settings. Without Chromium
// the browser part says why and skips (HVP_REQUIRE_BROWSER=1 makes that a failure).
// HVP_EXPLORER_SCREENSHOT=FILE.png keeps the page's screenshot (the README's).

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Metafile } from 'esbuild';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ExplorerServer } from '../cli/serve.js';
import type { Image } from '../hvp/data/types.js';
import { ExplorerSession, type ScoreResult, type ViewSettings } from '../hvp/explorer/session.js';
import { pretrain } from '../hvp/train/loop.js';
import { buildExplorer, nodeOnlyInputs } from '../scripts/browser-bundle.mjs';
import { haveChromium, launchChromium, openPage, pageErrors, WEBGPU_ARGS } from './browser.js';
import { sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

const hasChromium = haveChromium('explorer browser test');
const SETTINGS: ViewSettings = { views: 3, scaleMin: 0.3, scaleMax: 1, seed: 7 };
const STEPS = 2;

/** Float agreement of two engines (different shader compilers): relative 1e-4 with an absolute floor. */
function close(a: number, b: number, rel = 1e-4, abs = 1e-5): boolean {
  return Math.abs(a - b) <= abs + rel * Math.abs(b);
}

type Scored = Pick<ScoreResult, 'rows' | 'scores' | 'hardest' | 'easiest' | 'random'>;

/** Same scores within float tolerance; same picks unless the two best (or worst) scores are a near tie. */
function expectSameScoring(page: Scored, node: Scored): void {
  expect(page.rows).toEqual(node.rows);
  page.scores.forEach((row, b) => row.forEach((s, k) => expect(close(s, node.scores[b][k]), `image ${b} pair ${k}: page ${s}, node ${node.scores[b][k]}`).toBe(true)));
  expect(page.random).toEqual(node.random);
  for (const [mode, sign] of [['hardest', 1], ['easiest', -1]] as const) {
    node[mode].forEach((pick, b) => {
      if (page[mode][b] === pick) return;
      const s = node.scores[b];
      // A differing pick is acceptable only where the two candidates score equal within tolerance.
      expect(close(s[page[mode][b]], s[pick]), `${mode} of image ${b}: page ${page[mode][b]}, node ${pick} (scores ${s}), sign ${sign}`).toBe(true);
    });
  }
}

describe('hvp serve: the explorer page', () => {
  let dir: string;
  let checkpoint: string;
  let images: Image[];
  let stats: { mean: number[]; std: number[] };
  let meta: Metafile;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hvp-explorer-'));
    meta = await buildExplorer(join(dir, 'page'));
    // A real `hvp pretrain` checkpoint of a tiny SimSiam: two steps on 28 px synthetic images.
    const ds = syntheticDataset(1, 16, 28);
    const config = tiny({ method: 'simsiam', widths: [4, 8, 8, 8], size: 28, views: 3, batchSize: 8, trainLimit: 16, epochs: 1, out: join(dir, 'run') });
    checkpoint = (await pretrain(config, { engine: await sharedEngine(), dataset: ds, progress: false })).checkpoint;
    // A batch of 8: the selection forward and training normalise over it, and a batch of 2-3 makes
    // batch norm's backward so ill-conditioned that two correct engines drift apart within two steps.
    images = await Promise.all(Array.from({ length: 8 }, (_, i) => ds.read(i)));
    stats = { mean: [...ds.mean], std: [...ds.std] };
  });

  it('bundles for the browser the training code itself, with nothing Node-only', () => {
    expect(nodeOnlyInputs(meta)).toEqual([]);
    for (const f of ['engine/device.ts', 'hvp/train/hvp-step.ts', 'hvp/select/score-simsiam.ts', 'hvp/views/render.ts', 'models/checkpoint-bytes.ts']) expect(Object.keys(meta.inputs)).toContain(f);
    expect(Object.keys(meta.inputs).filter((p) => /node_modules\/(webgpu|sharp)\//.test(p))).toEqual([]);
  });

  it('serves the page, the checkpoint and nothing outside the page', async () => {
    const server = await startServer({ pageDir: join(dir, 'page'), checkpoint, data: null, port: 0 });
    try {
      const get = (p: string) => fetch(new URL(p, server.url));
      expect(await (await get('api/info')).json()).toEqual({ checkpoint: 'checkpoint.safetensors', samples: null });
      expect(Buffer.from(await (await get('api/checkpoint')).arrayBuffer()).equals(readFileSync(checkpoint))).toBe(true);
      expect((await get('api/samples')).status).toBe(404);
      expect(await (await get('/')).text()).toContain('<script type="module" src="explorer.js">');
      expect((await get('explorer.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
      for (const p of ['/%2e%2e/package.json', '/..%2fpackage.json', '/explorer.js.bak']) expect((await get(p)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('hvp serve (the built CLI): --run DIR offers its checkpoint, prints the URL, Ctrl-C stops it', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    execFileSync(process.execPath, ['scripts/build.mjs', '--no-lib'], { cwd: root });
    const child = spawn(process.execPath, ['dist/hvp.js', 'serve', '--run', join(dir, 'run'), '--port', '0'], { cwd: root });
    try {
      let out = '';
      const url = await new Promise<string>((ok, fail) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          const m = /HVP explorer on (http:\/\/\S+\/)[^\n]*\n/.exec(out);
          if (m) ok(m[1]);
        });
        child.on('exit', (code) => fail(new Error(`hvp serve exited (${code}) before printing its URL: ${out}`)));
      });
      expect(out).toContain(`checkpoint ${join(dir, 'run', 'checkpoint.safetensors')}`);
      expect(await (await fetch(new URL('api/info', url))).json()).toMatchObject({ checkpoint: 'checkpoint.safetensors' });
      expect(await (await fetch(url)).text()).toContain('HVP explorer');
      const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill();
    }
  });

  describe.skipIf(!hasChromium)('in headless Chromium', () => {
    let server: ExplorerServer;
    const screenshot = process.env.HVP_EXPLORER_SCREENSHOT;
    beforeAll(async () => {
      // The README's picture shows the built-in Fashion-MNIST, which the server then offers the page.
      server = await startServer({ pageDir: join(dir, 'page'), checkpoint, data: screenshot ? undefined : null, port: 0 });
    });
    afterAll(async () => {
      await server?.close();
    });

    it('scores, picks and trains as the Node engine does (within float tolerance) on the same checkpoint and images', async () => {
      const node = await ExplorerSession.load(await sharedEngine(), readFileSync(checkpoint), checkpoint);
      node.setImages(images, stats);
      await node.configure(SETTINGS);
      const nodeBefore = await node.score();
      const nodeLosses = await node.train(STEPS);
      const nodeAfter = await node.score();

      const browser = await launchChromium(WEBGPU_ARGS);
      try {
        const page = await openPage(browser);
        const errors = pageErrors(page);
        await page.setViewport({ width: 1250, height: 900 });
        await page.goto(server.url, { waitUntil: 'load' });
        const plain = images.map((im) => ({ pixels: Array.from(im.pixels), height: im.height, width: im.width, label: im.label }));
        const got = await page.evaluate(
          async (imgs, st, settings, steps) => {
            const h = (window as unknown as { hvpExplorer: Record<string, (...a: unknown[]) => Promise<unknown>> & { ready: Promise<void> } }).hvpExplorer;
            await h.ready;
            const info = await h.info();
            await h.setImages(imgs, st);
            await h.configure(settings);
            const before = await h.score();
            const losses = await h.train(steps);
            const after = await h.score();
            return { info, adapter: await h.adapter(), before, losses, after };
          },
          plain,
          stats,
          SETTINGS,
          STEPS,
        );
        expect(errors).toEqual([]);
        expect(got.adapter).toMatch(/swiftshader/i);
        expect(got.info).toMatchObject({ kind: 'checkpoint', method: 'simsiam', channels: 1, size: 28, trainable: true });
        expectSameScoring(got.before as Scored, nodeBefore);
        const losses = got.losses as number[];
        expect(losses).toHaveLength(STEPS);
        losses.forEach((l, i) => expect(close(l, nodeLosses[i]), `step ${i}: page ${l}, node ${nodeLosses[i]}`).toBe(true));
        // The trained weights agree too: the scores after training match, and they moved.
        expectSameScoring(got.after as Scored, nodeAfter);
        expect(nodeAfter.scores).not.toEqual(nodeBefore.scores);
        // What the page drew: every view and heat map has content.
        const drawn = await page.evaluate(() =>
          Array.from(document.querySelectorAll('#results canvas')).map((c) => {
            const cv = c as HTMLCanvasElement;
            const px = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
            let lit = 0;
            for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 0) lit++;
            return lit;
          }),
        );
        // Per image: V views, one heat map, three pairs of two views.
        expect(drawn).toHaveLength(images.length * (SETTINGS.views + 1 + 6));
        for (const lit of drawn) expect(lit).toBeGreaterThan(0);
        expect(await page.$eval('#loss polyline', (p) => p.getAttribute('points')!.split(' ').length)).toBe(STEPS);

        if (screenshot) {
          // Four Fashion-MNIST samples from the server, a few more live steps, their views and picks.
          await page.evaluate(async () => {
            const h = (window as unknown as { hvpExplorer: Record<string, (...a: unknown[]) => Promise<unknown>> }).hvpExplorer;
            await h.loadSamples(4, 0);
            await h.configure({ views: 4, scaleMin: 0.2, scaleMax: 1, seed: 0 });
            await h.train(3);
            await h.score();
          });
          expect(errors).toEqual([]);
        }
        const shot = await page.screenshot({ fullPage: true });
        writeFileSync(join(dir, 'explorer.png'), shot);
        if (screenshot) writeFileSync(screenshot, await sharp(shot).resize({ width: 1000 }).png({ palette: true, colours: 128 }).toBuffer());
      } finally {
        await browser.close();
      }
    });

    it('loads a picked checkpoint file and picked image files', async () => {
      const pngs = await Promise.all(
        [[40, 30, 3], [24, 36, 1]].map(async ([w, h, c], k) => {
          const raw = Uint8Array.from({ length: w * h * c }, (_, i) => (i * (7 + k) + (i % w) * 13) % 256);
          const file = join(dir, `picked-${k}.png`);
          await sharp(raw, { raw: { width: w, height: h, channels: c as 1 | 3 } }).png().toFile(file);
          return file;
        }),
      );
      const browser = await launchChromium(WEBGPU_ARGS);
      try {
        const page = await openPage(browser);
        const errors = pageErrors(page);
        await page.goto(server.url, { waitUntil: 'load' });
        await page.evaluate(() => (window as unknown as { hvpExplorer: { ready: Promise<void> } }).hvpExplorer.ready);
        const statusIs = (re: RegExp) => page.waitForFunction((src) => new RegExp(src).test(document.getElementById('status')!.textContent!), { timeout: 0 }, re.source);
        await (await page.$('input#checkpoint-file'))!.uploadFile(checkpoint);
        await statusIs(/^loaded checkpoint\.safetensors$/);
        await (await page.$('input#image-files'))!.uploadFile(...pngs);
        await statusIs(/^2 images scored$|failed/);
        expect(await page.$eval('#status', (e) => e.textContent)).toBe('2 images scored');
        expect(await page.$$eval('.image-row .views h3', (hs) => hs.map((h) => h.textContent))).toEqual(['picked-0.png', 'picked-1.png']);
        expect(await page.$eval('#model-info', (e) => e.textContent)).toContain('checkpoint checkpoint.safetensors');
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
      }
    });

    it('says clearly when the browser has no WebGPU', async () => {
      const browser = await launchChromium();
      try {
        const page = await openPage(browser);
        // As a browser without WebGPU: navigator.gpu undefined.
        await page.evaluateOnNewDocument(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
        await page.goto(server.url, { waitUntil: 'load' });
        await page.waitForFunction(() => document.getElementById('status')!.classList.contains('error'));
        const shown = await page.evaluate(() => ({
          box: !document.getElementById('no-webgpu')!.hidden,
          text: document.getElementById('no-webgpu')!.textContent,
          status: document.getElementById('status')!.textContent,
        }));
        expect(shown.box).toBe(true);
        expect(shown.text).toContain('no WebGPU');
        expect(shown.text).toContain('navigator.gpu is undefined');
        expect(shown.status).toContain('navigator.gpu is undefined');
      } finally {
        await browser.close();
      }
    });
  });
});
