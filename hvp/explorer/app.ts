// The explorer page: WebGPU from navigator.gpu, a model (a picked or served checkpoint, or a fresh
// SimSiam), images (picked files or the server's Fashion-MNIST samples), then the views, pair scores and
// picks of the selection forward, and live training steps. Everything runs in ExplorerSession, the
// same code Node runs; `window.hvpExplorer` exposes it to scripts (the browser test drives it so).

import { Engine } from '../../engine/index.js';
import type { Image } from '../data/types.js';
import { pixelStats } from '../data/stats.js';
import type { TrainConfig } from '../train/config.js';
import { BusyGuard, type Control } from './busy.js';
import { ExplorerSession, type ScoreResult, type SessionInfo, type ViewSettings } from './session.js';
import { drawLossCurve, renderResults, type Stats } from './ui.js';

/** What a script (or the test) passes for an image: plain arrays survive page.evaluate. */
export interface PlainImage {
  pixels: ArrayLike<number>;
  height: number;
  width: number;
  label?: number;
}

interface ServerInfo {
  checkpoint: string | null;
  samples: { name: string; length: number; channels: number } | null;
}

interface Samples {
  name: string;
  channels: number;
  mean: number[];
  std: number[];
  classes: string[];
  images: { height: number; width: number; label: number; pixels: string }[];
}

/** Picked photos are shrunk to this longest side before upload: views are far smaller anyway. */
const MAX_SIDE = 128;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let engine: Engine | null = null;
let session: ExplorerSession | null = null;
let stats: Stats = { mean: [], std: [] };
let labels: string[] = [];
let losses: number[] = [];
let last: ScoreResult | null = null;
let server: ServerInfo = { checkpoint: null, samples: null };

/** Every control that starts an action. */
const CONTROLS = ['fresh', 'server-checkpoint', 'checkpoint-file', 'samples', 'image-files', 'score', 'train'];
/** Whether a control may be used when nothing runs. */
function allowed(c: Control): boolean {
  const id = (c as unknown as HTMLElement).id;
  if (id === 'train') return !!session?.info().trainable;
  if (id === 'server-checkpoint') return !!server.checkpoint;
  if (id === 'samples') return !!server.samples;
  return true;
}
/** One action at a time: every control disabled while one runs (clicks and scripts alike). */
const guard = new BusyGuard(() => CONTROLS.map((id) => $<HTMLButtonElement>(id)).filter((c) => c !== null), allowed);

function status(msg: string, error = false): void {
  const s = $('status');
  s.textContent = msg;
  s.classList.toggle('error', error);
}

function showInfo(info: SessionInfo): void {
  $('model-info').textContent =
    `${info.kind === 'fresh' ? 'fresh' : `${info.kind} ${info.source}`} · ${info.method} · ${info.arch} · ${info.channels} channel${info.channels > 1 ? 's' : ''} · ${info.size} px views · scored by ${info.scoring}` +
    (info.trainable ? '' : ' · cannot train');
  guard.refresh();
  const s = session!.settings();
  ($('views') as HTMLInputElement).value = String(s.views);
  ($('scale-min') as HTMLInputElement).value = String(s.scaleMin);
  ($('scale-max') as HTMLInputElement).value = String(s.scaleMax);
  ($('seed') as HTMLInputElement).value = String(s.seed);
}

function requireEngine(): Engine {
  if (!engine) throw new Error('WebGPU is not ready (see the message above)');
  return engine;
}

/** The images last given, kept so a newly loaded model of the same channels scores them at once. */
let images: Image[] = [];

async function useSession(s: ExplorerSession): Promise<SessionInfo> {
  session = s;
  losses = [];
  drawLossCurve($('loss') as unknown as SVGSVGElement, losses);
  const info = s.info();
  showInfo(info);
  $('results').replaceChildren();
  if (images.length && stats.mean.length === s.channels) {
    s.setImages(images, stats);
    await score();
  }
  return info;
}

async function fresh(over: Partial<TrainConfig> = {}, channels = 1): Promise<SessionInfo> {
  return useSession(ExplorerSession.fresh(requireEngine(), channels, over));
}

async function loadCheckpoint(bytes: Uint8Array, name: string): Promise<SessionInfo> {
  return useSession(await ExplorerSession.load(requireEngine(), bytes, name));
}

async function loadServerCheckpoint(): Promise<SessionInfo> {
  const res = await fetch('api/checkpoint');
  if (!res.ok) throw new Error(`the server has no checkpoint (${res.status}: ${await res.text()})`);
  return loadCheckpoint(new Uint8Array(await res.arrayBuffer()), decodeURIComponent(res.headers.get('x-checkpoint-name') ?? 'server checkpoint'));
}

function setImages(plainImages: PlainImage[], givenStats?: Stats, names?: string[]): void {
  if (!session) throw new Error('load a checkpoint or start a fresh model first');
  const c = session.channels;
  const imgs: Image[] = plainImages.map((im) => ({ pixels: Uint8Array.from(im.pixels), height: im.height, width: im.width, label: im.label ?? -1 }));
  // Picked photos carry no data set statistics: normalise by their own.
  const st = givenStats ?? statsOf(imgs, c);
  session.setImages(imgs, st);
  [images, stats] = [imgs, st];
  labels = names ?? imgs.map((_, i) => `image ${i}`);
}

/** Per-channel mean and std over every pixel of the images (each image weighted by its size). */
function statsOf(images: Image[], channels: number): Stats {
  const parts = images.map((im) => ({ n: im.height * im.width, ...pixelStats(im.pixels, { count: 1, channels, plane: im.height * im.width, stride: im.pixels.length }) }));
  const total = parts.reduce((a, p) => a + p.n, 0);
  const mean = Array.from({ length: channels }, (_, k) => parts.reduce((a, p) => a + p.n * p.mean[k], 0) / total);
  const std = mean.map((m, k) => {
    const sq = parts.reduce((a, p) => a + p.n * (p.std[k] ** 2 + p.mean[k] ** 2), 0) / total;
    // A flat image set would divide by zero.
    return Math.max(1e-3, Math.sqrt(Math.max(0, sq - m * m)));
  });
  return { mean, std };
}

async function loadSamples(count: number, offset: number): Promise<void> {
  const res = await fetch(`api/samples?count=${count}&offset=${offset}`);
  if (!res.ok) throw new Error(`no samples from the server (${res.status}: ${await res.text()})`);
  const s = (await res.json()) as Samples;
  if (session && s.channels !== session.channels) throw new Error(`${s.name} has ${s.channels} channels; the model takes ${session.channels}`);
  const images = s.images.map((im) => ({ ...im, pixels: Uint8Array.from(atob(im.pixels), (ch) => ch.charCodeAt(0)) }));
  setImages(images, { mean: s.mean, std: s.std }, images.map((im, i) => `${s.name} #${offset + i} (${s.classes[im.label] ?? im.label})`));
}

/** A picked image file as `channels`-channel CHW bytes, shrunk to MAX_SIDE. */
async function decodeFile(file: File, channels: number): Promise<PlainImage> {
  const bitmap = await createImageBitmap(file);
  const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * k));
  const h = Math.max(1, Math.round(bitmap.height * k));
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const pixels = new Uint8Array(channels * w * h);
  for (let p = 0; p < w * h; p++) {
    const [r, g, b] = [rgba[p * 4], rgba[p * 4 + 1], rgba[p * 4 + 2]];
    if (channels === 1) pixels[p] = Math.round(0.299 * r + 0.587 * g + 0.114 * b); // ITU-R 601-2, as PIL's convert('L')
    else [r, g, b].forEach((v, ch) => (pixels[ch * w * h + p] = v));
  }
  return { pixels, height: h, width: w };
}

function readSettings(): ViewSettings {
  const num = (id: string) => Number(($(id) as HTMLInputElement).value);
  return { views: num('views'), scaleMin: num('scale-min'), scaleMax: num('scale-max'), seed: num('seed') };
}

async function configure(s: ViewSettings): Promise<void> {
  if (!session) throw new Error('load a checkpoint or start a fresh model first');
  await session.configure(s);
  showInfo(session.info());
}

async function score(): Promise<ScoreResult> {
  if (!session) throw new Error('load a checkpoint or start a fresh model first');
  last = await session.score();
  renderResults($('results'), last, stats, labels);
  return last;
}

async function train(steps: number): Promise<number[]> {
  if (!session) throw new Error('load a checkpoint or start a fresh model first');
  const out = await session.train(steps);
  losses.push(...out);
  drawLossCurve($('loss') as unknown as SVGSVGElement, losses);
  $('step').textContent = `step ${session.info().step}`;
  return out;
}

/** Plain arrays of a scoring, for scripts. */
function plain(r: ScoreResult) {
  return { rows: r.rows, scores: r.scores, hardest: r.hardest, easiest: r.easiest, random: r.random, views: r.views, batch: r.batch };
}

/** Run a UI action, reporting progress and any error on the page. */
function action(button: string, what: string, fn: () => Promise<unknown>): void {
  $(button).addEventListener('click', async () => {
    if (guard.busy) return;
    status(`${what}…`);
    const t0 = performance.now();
    try {
      await guard.run(what, fn);
      status(`${what}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      status(`${what} failed: ${(e as Error).message}`, true);
    }
  });
}

function wire(): void {
  action('fresh', 'fresh SimSiam', () => fresh({}, Number(($('fresh-channels') as HTMLSelectElement).value)));
  action('server-checkpoint', 'loading the server\'s checkpoint', loadServerCheckpoint);
  ($('server-checkpoint') as HTMLButtonElement).title = server.checkpoint ?? 'start hvp serve with --checkpoint FILE or --run DIR';
  $('checkpoint-file').addEventListener('change', async (ev) => {
    const file = (ev.target as HTMLInputElement).files?.[0];
    if (!file) return;
    status(`loading ${file.name}…`);
    try {
      await guard.run(`loading ${file.name}`, async () => loadCheckpoint(new Uint8Array(await file.arrayBuffer()), file.name));
      status(`loaded ${file.name}`);
    } catch (e) {
      status(`loading ${file.name} failed: ${(e as Error).message}`, true);
    }
  });
  action('samples', 'Fashion-MNIST samples', async () => {
    await loadSamples(Number(($('sample-count') as HTMLInputElement).value), Number(($('sample-offset') as HTMLInputElement).value));
    await configure(readSettings());
    await score();
  });
  $('image-files').addEventListener('change', async (ev) => {
    const files = Array.from((ev.target as HTMLInputElement).files ?? []);
    try {
      await guard.run('scoring the picked images', async () => {
        if (!session) throw new Error('load a checkpoint or start a fresh model first');
        const images = await Promise.all(files.map((f) => decodeFile(f, session!.channels)));
        setImages(images, undefined, files.map((f) => f.name));
        await configure(readSettings());
        await score();
      });
      status(`${files.length} images scored`);
    } catch (e) {
      status(`images failed: ${(e as Error).message}`, true);
    }
  });
  action('score', 'rendering and scoring', async () => {
    await configure(readSettings());
    await score();
  });
  action('train', 'training', async () => {
    await configure(readSettings());
    await train(Number(($('train-steps') as HTMLInputElement).value));
    await score();
  });
}

async function start(): Promise<void> {
  const noWebGpu = (why: string) => {
    $('no-webgpu').hidden = false;
    $('no-webgpu-why').textContent = why;
    $('adapter').textContent = 'none';
    return new Error(why);
  };
  if (!(navigator as Navigator & { gpu?: GPU }).gpu) throw noWebGpu('navigator.gpu is undefined.');
  try {
    engine = await Engine.create();
  } catch (e) {
    throw noWebGpu((e as Error).message);
  }
  $('adapter').textContent = `${engine.description}${engine.backend.isCpuAdapter ? ' (software adapter: CPU)' : ''}`;
  server = (await (await fetch('api/info')).json()) as ServerInfo;
  wire();
  await guard.run('starting', async () => {
    if (server.checkpoint) await loadServerCheckpoint();
    else await fresh();
    if (server.samples) {
      await loadSamples(4, 0);
      await score();
    }
  });
  status('ready');
}

const ready = start().catch((e) => {
  status(`${(e as Error).message}`, true);
  throw e;
});

(window as unknown as { hvpExplorer: unknown }).hvpExplorer = {
  ready,
  adapter: () => engine?.description ?? null,
  // Scripts go through the same guard as clicks.
  fresh: (over?: Partial<TrainConfig>, channels?: number) => guard.run('fresh', () => fresh(over, channels)),
  loadServerCheckpoint: () => guard.run('loading the server\'s checkpoint', loadServerCheckpoint),
  loadCheckpoint: (bytes: ArrayLike<number>, name = 'checkpoint') => guard.run(`loading ${name}`, () => loadCheckpoint(Uint8Array.from(bytes), name)),
  setImages,
  loadSamples: (count: number, offset: number) => guard.run('loading samples', () => loadSamples(count, offset)),
  configure: (s: ViewSettings) => guard.run('configuring', () => configure(s)),
  score: () => guard.run('scoring', async () => plain(await score())),
  train: (steps: number) => guard.run('training', () => train(steps)),
  busy: () => guard.busy,
  info: () => session?.info() ?? null,
};
