// The input pipeline: images/s of the BatchLoader over an image folder (decode, resize to 256 on the
// shorter side, CHW, packed batches of 64), on a JPEG folder generated here, against torchvision's
// DataLoader (ImageFolder + Resize(256) + PILToTensor, one worker per core) on the same files.
// A GPU step of ResNet-50 consumes hundreds to thousands of images per second; this says whether
// the CPU can decode that fast. No GPU work: `ours_ms` is the wall time of one epoch. Both sides
// also report their CPU time per image (`cpu_ms_per_image`, `peer_cpu_ms_per_image`): on a machine
// shared with other work, the side with more threads gets more of the CPU, and this says which side
// decodes more cheaply; `cpu_cores` and `peer_cpu_cores` (CPU time over wall time) say how many
// cores each side kept busy. `decode_threads` and `uv_threads` say how many threads decoded; the
// shape names which decoder read the JPEGs (the loader's own, libjpeg, or sharp).

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../engine/index.js';
import { BatchLoader, jpegAddonPath, libuvThreads, openImageFolder, sharedDecodePool } from '../../hvp/data/index.js';
import type { BenchCase } from '../case.js';
import { TORCHVISION } from '../peers/torch-loader.js';
import type { Timing } from '../timing.js';

export interface JpegFolderSpec {
  images: number;
  width: number;
  height: number;
  classes: number;
  /** JPEG quality (default 90). */
  quality?: number;
  seed?: number;
}

/** The loader case's folder: ImageNet's typical size, two classes. */
export const LOADER_FOLDER: JpegFolderSpec = { images: 400, width: 500, height: 375, classes: 2 };
export const LOADER_BATCH = 64;
export const LOADER_SIZE = 256;

/**
 * Write `spec.images` JPEGs to `root/c<k>/<i>.jpg` (image i in class i mod classes), the same bytes
 * for the same spec: seeded sinusoids per channel plus noise, so they compress and decode like
 * photographs rather than like flat colour or pure noise.
 */
export async function writeJpegFolder(root: string, spec: JpegFolderSpec): Promise<void> {
  const { images, width, height, classes, quality = 90 } = spec;
  const rng = new Rng(spec.seed ?? 1);
  for (let c = 0; c < classes; c++) await mkdir(join(root, `c${c}`), { recursive: true });
  const digits = String(images - 1).length;
  for (let i = 0; i < images; i++) {
    const freq = Array.from({ length: 6 }, () => 0.005 + 0.05 * rng.uniform());
    const px = Buffer.alloc(width * height * 3);
    for (let y = 0, q = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let ch = 0; ch < 3; ch++, q++) px[q] = 98 + 60 * Math.sin(x * freq[ch] + y * freq[ch + 3]) + 60 * rng.uniform();
      }
    }
    const file = join(root, `c${i % classes}`, `${String(i).padStart(digits, '0')}.jpg`);
    await sharp(px, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toFile(file);
  }
}

let folder: Promise<string> | null = null;

/** The generated folder, written once per process and removed when it exits. */
function loaderFolder(): Promise<string> {
  folder ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hvp-bench-jpegs-'));
    process.once('exit', () => void rm(dir, { recursive: true, force: true }));
    await writeJpegFolder(dir, LOADER_FOLDER);
    return dir;
  })();
  return folder;
}

/**
 * Wall time of whole epochs (shuffled, seed per epoch), as a Timing, and the process's CPU time per
 * image over the timed epochs (every thread: main, decode workers, libuv's pool).
 */
async function timeEpochs(
  epoch: (e: number) => Promise<number>,
  opts: { warmup?: number; reps?: number },
): Promise<Timing & { cpuMsPerImage: number; cpuCores: number }> {
  const runs: number[] = [];
  const warmup = opts.warmup ?? 1;
  let cpu = process.cpuUsage();
  for (let e = 0; e < warmup + Math.max(opts.reps ?? 1, 1); e++) {
    if (e === warmup) cpu = process.cpuUsage();
    const t0 = performance.now();
    const n = await epoch(e);
    if (n !== LOADER_FOLDER.images) throw new Error(`loader bench: an epoch read ${n} images, not ${LOADER_FOLDER.images}`);
    if (e >= warmup) runs.push(performance.now() - t0);
  }
  const used = process.cpuUsage(cpu);
  const sorted = [...runs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const cpuMs = (used.user + used.system) / 1000;
  const cpuMsPerImage = cpuMs / (runs.length * LOADER_FOLDER.images);
  const cpuCores = cpuMs / runs.reduce((a, b) => a + b, 0);
  return { medianMs: median, minMs: sorted[0], runsMs: runs, method: 'wall', wallMedianMs: median, cpuMsPerImage, cpuCores };
}

/** One epoch per run, ours and torchvision's alternating (hvp bench's interleaved peers). */
export const loaderCases: BenchCase[] = [
  {
    name: 'loader',
    shape: `${LOADER_FOLDER.images} JPEGs ${LOADER_FOLDER.width}x${LOADER_FOLDER.height}, resize ${LOADER_SIZE}, batch ${LOADER_BATCH}, decoded by ${jpegAddonPath() ? 'libjpeg' : 'sharp'}`,
    // Writing the folder and the peer's worker processes take tens of seconds: not in the quick subset.
    quick: false,
    images: LOADER_FOLDER.images,
    reps: { warmup: 1, reps: 1 },
    ours: async (ctx) => {
      const root = await loaderFolder();
      const ds = await openImageFolder(root, 'train', { loadSize: LOADER_SIZE });
      const loader = new BatchLoader(ds, { batchSize: LOADER_BATCH, seed: 0 });
      const { cpuMsPerImage, cpuCores, ...timing } = await timeEpochs(async (e) => {
        let n = 0;
        for await (const b of loader.epochBatches(e)) n += b.indices.length;
        return n;
      }, ctx.time);
      const figures = { cpu_ms_per_image: cpuMsPerImage, cpu_cores: cpuCores, decode_threads: sharedDecodePool().size, uv_threads: libuvThreads() };
      return { ...timing, figures };
    },
    peer: {
      name: TORCHVISION,
      needs: 'torchvision',
      run: async (ctx) => {
        const root = await loaderFolder();
        const time = { warmup: ctx.time.warmup ?? 1, reps: ctx.time.reps ?? 1 };
        return ctx.torchvision!.epochs({ root, batch: LOADER_BATCH, size: LOADER_SIZE, workers: availableParallelism(), ...time });
      },
    },
  },
];
