// Image folders decoded in worker threads (the default) give the very batches that decoding on the
// calling thread gives: the same bytes, sizes, labels and order, the same skipped files reported the
// same way, and the same batches when an epoch is resumed part-way. The folder mixes JPEGs of
// several sizes (the bench's generator), RGB, grey and RGBA PNGs, and an unreadable file.

import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../engine/rng.js';
import { BatchLoader, DecodePool, decodeImage, openImageFolder, type ImageBatch } from '../hvp/data/index.js';
import { writeJpegFolder } from '../bench/cases/loader.js';
import { jpegAddonPath } from '../hvp/data/jpeg-addon.js';
import { PYTHONS, lastLine, runPython } from '../bench/peers/torch.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hvp-decode-pool-'));
  await writeJpegFolder(root, { images: 9, width: 40, height: 30, classes: 3, seed: 5 });
  // Portrait JPEGs of another size, moved in beside the others.
  const tall = await mkdtemp(join(tmpdir(), 'hvp-decode-pool-tall-'));
  await writeJpegFolder(tall, { images: 2, width: 21, height: 47, classes: 1, seed: 6 });
  for (const f of ['0.jpg', '1.jpg']) await rename(join(tall, 'c0', f), join(root, 'c0', `tall${f}`));
  await rm(tall, { recursive: true, force: true });
  const rng = new Rng(7);
  const png = (w: number, h: number, c: 1 | 3 | 4) =>
    sharp(Uint8Array.from({ length: w * h * c }, () => rng.int(256)), { raw: { width: w, height: h, channels: c } }).png();
  await png(33, 19, 3).toFile(join(root, 'c0', 'rgb.png'));
  await png(18, 26, 1).toFile(join(root, 'c1', 'grey.png'));
  await png(25, 25, 4).toFile(join(root, 'c2', 'rgba.png'));
  await writeFile(join(root, 'c1', 'broken.jpg'), Buffer.from('not a jpeg at all'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every batch of epochs 0 and 1, epoch 1 also resumed at batch 2, with each skip's (index, message). */
async function readAll(threads: number | undefined, loadSize?: number) {
  const ds = await openImageFolder(root, 'train', { loadSize, threads });
  const skips: [number, string][] = [];
  const loader = new BatchLoader(ds, { batchSize: 4, seed: 3, workers: 3, onSkip: (i, e) => skips.push([i, e.message]) });
  const epoch = async (e: number, start = 0) => {
    const out: ImageBatch[] = [];
    for await (const b of loader.epochBatches(e, start)) out.push(b);
    return out;
  };
  return { batches: [...(await epoch(0)), ...(await epoch(1)), ...(await epoch(1, 2))], skips, skipped: loader.skipped };
}

const plain = (b: ImageBatch) => ({
  pixels: Buffer.from(b.pixels.buffer, b.pixels.byteOffset, b.pixels.byteLength).toString('base64'),
  offsets: Array.from(b.offsets),
  heights: Array.from(b.heights),
  widths: Array.from(b.widths),
  channels: b.channels,
  labels: Array.from(b.labels),
  indices: Array.from(b.indices),
});

describe('decodeImage', () => {
  it('lays RGB out channel-major exactly, whether the plane is a multiple of 4 pixels or not', async () => {
    const rng = new Rng(9);
    const pool = new DecodePool(1);
    for (const [w, h] of [[8, 6], [7, 5], [4, 1], [3, 1]]) {
      const hwc = Uint8Array.from({ length: w * h * 3 }, () => rng.int(256));
      const file = join(root, `exact-${w}x${h}.png`);
      await sharp(hwc, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
      const img = await decodeImage(file);
      const want = [0, 1, 2].flatMap((c) => Array.from({ length: w * h }, (_, p) => hwc[3 * p + c]));
      expect([img.height, img.width]).toEqual([h, w]);
      expect(Array.from(img.pixels)).toEqual(want);
      expect(Array.from((await pool.decode(file)).pixels)).toEqual(want);
    }
    await pool.close();
  });
});

/**
 * Pillow's antialiased bilinear resize (torchvision's `Resize` on PIL images), in float64: per output
 * pixel, a triangle filter widened by the shrink factor, weights normalised, rows first, then columns.
 * `chw` is uint8 channel-major; so is the result, unrounded.
 */
function pilBilinearRef(chw: Uint8Array, h: number, w: number, outH: number, outW: number): Float64Array {
  const taps = (inSize: number, outSize: number) =>
    Array.from({ length: outSize }, (_, o) => {
      const scale = inSize / outSize;
      const support = Math.max(scale, 1);
      const center = (o + 0.5) * scale;
      const lo = Math.max(0, Math.trunc(center - support + 0.5));
      const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
      const ws = Array.from({ length: hi - lo }, (_, k) => Math.max(0, 1 - Math.abs((lo + k - center + 0.5) / support)));
      const sum = ws.reduce((a, b) => a + b, 0);
      return { lo, ws: ws.map((x) => x / sum) };
    });
  const across = taps(w, outW);
  const down = taps(h, outH);
  const out = new Float64Array(3 * outH * outW);
  const row = new Float64Array(outW);
  for (let c = 0; c < 3; c++) {
    const rows = Array.from({ length: h }, (_, y) => {
      for (let x = 0; x < outW; x++) row[x] = across[x].ws.reduce((s, wt, k) => s + wt * chw[(c * h + y) * w + across[x].lo + k], 0);
      return Float64Array.from(row);
    });
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) out[(c * outH + y) * outW + x] = down[y].ws.reduce((s, wt, k) => s + wt * rows[down[y].lo + k][x], 0);
    }
  }
  return out;
}

describe('loadSize resizing', () => {
  it("is torchvision's filter, antialiased bilinear, within a grey level of it on average", async () => {
    // Photograph-like JPEGs (the bench's generator) shrunk 1.5-2.3x, landscape and portrait.
    const dir = await mkdtemp(join(tmpdir(), 'hvp-resize-'));
    await writeJpegFolder(join(dir, 'wide'), { images: 1, width: 150, height: 96, classes: 1, seed: 11 });
    await writeJpegFolder(join(dir, 'tall'), { images: 1, width: 90, height: 140, classes: 1, seed: 12 });
    for (const [file, loadSize, outH, outW] of [
      [join(dir, 'wide', 'c0', '0.jpg'), 64, 64, 100],
      [join(dir, 'tall', 'c0', '0.jpg'), 40, 62, 40],
    ] as const) {
      const full = await decodeImage(file);
      const small = await decodeImage(file, loadSize);
      expect([small.height, small.width]).toEqual([outH, outW]);
      const ref = pilBilinearRef(full.pixels, full.height, full.width, outH, outW);
      const err = Array.from(small.pixels, (v, i) => Math.abs(v - ref[i]));
      // Lanczos-3 (sharp's default) on these images: 2.0 on average; a filter that does not widen
      // with the shrink (aliasing) is further still.
      expect(err.reduce((a, b) => a + b, 0) / err.length).toBeLessThan(1);
      expect(Math.max(...err)).toBeLessThan(8);
    }
    await rm(dir, { recursive: true, force: true });
  });
});

// PIL itself, where a python3 has it: the pixels torchvision's ImageFolder + Resize + PILToTensor give.
const PIL_SCRIPT = `
import base64, json, sys
from PIL import Image
path, size = sys.argv[1], int(sys.argv[2])
im = Image.open(path).convert('RGB')
w, h = im.size
short, long = min(w, h), max(w, h)
new_long = int(size * long / short)
out = im.resize((size, new_long) if w <= h else (new_long, size), Image.BILINEAR)
planar = lambda img: b''.join(band.tobytes() for band in img.split())
print(json.dumps({'full': base64.b64encode(planar(im)).decode(), 'resized': base64.b64encode(planar(out)).decode(), 'size': [out.height, out.width]}))
`;

/** The first python3 that imports PIL, or null. */
async function pilPython(): Promise<string | null> {
  for (const python of PYTHONS) if ((await runPython(python, ['-c', 'import PIL'], 60_000)).code === 0) return python;
  return null;
}

describe('against PIL', () => {
  // With the loader's JPEG decoder built (build/jpeg.node: libjpeg-turbo and Pillow's resampling), a JPEG
  // gives PIL's bytes exactly: ImageFolder's decode, and Resize's size (truncated, as torchvision
  // computes it) and pixels, on odd sizes, an enlargement and a greyscale file. With sharp alone the
  // decode is still PIL's and the resize within a grey level on average.
  it("decodes JPEGs to PIL's pixels and resizes them as torchvision's Resize does", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hvp-pil-'));
    try {
      const cases: [string, number][] = [];
      for (const [name, width, height, size, seed] of [['wide', 150, 96, 64, 13], ['tall', 90, 140, 40, 14], ['odd', 97, 61, 64, 15], ['small', 30, 20, 64, 16]] as const) {
        await writeJpegFolder(join(dir, name), { images: 1, width, height, classes: 1, seed });
        cases.push([join(dir, name, 'c0', '0.jpg'), size]);
      }
      const grey = join(dir, 'grey.jpg');
      await sharp(await readFile(cases[0][0])).greyscale().jpeg({ quality: 90 }).toFile(grey);
      cases.push([grey, 48]);
      const python = await pilPython();
      // CI (HVP_REQUIRE_JPEG=1) builds the decoder and installs PIL: there a skip would hide a failure.
      if (process.env.HVP_REQUIRE_JPEG === '1') {
        expect(jpegAddonPath(), 'HVP_REQUIRE_JPEG=1 but build/jpeg.node is not built (npm run build:jpeg)').not.toBeNull();
        expect(python, 'HVP_REQUIRE_JPEG=1 but no python3 imports PIL').not.toBeNull();
      }
      if (!python) {
        console.warn('data-decode-pool: no python3 with PIL; the comparison with PIL was not run');
        return;
      }
      const exact = jpegAddonPath() !== null;
      for (const [file, size] of cases) {
        const r = await runPython(python, ['-c', PIL_SCRIPT, file, String(size)], 60_000);
        expect(r.code, r.stderr).toBe(0);
        const pil = JSON.parse(lastLine(r.stdout)) as { full: string; resized: string; size: [number, number] };
        const full = await decodeImage(file);
        expect(Buffer.from(full.pixels).toString('base64'), file).toBe(pil.full);
        const small = await decodeImage(file, size);
        const want = Buffer.from(pil.resized, 'base64');
        if (exact) {
          expect([small.height, small.width], file).toEqual(pil.size);
          expect(Buffer.from(small.pixels).equals(want), file).toBe(true);
        } else if (small.height === pil.size[0] && small.width === pil.size[1]) {
          const err = Array.from(small.pixels, (v, i) => Math.abs(v - want[i]));
          expect(err.reduce((a, b) => a + b, 0) / err.length).toBeLessThan(1);
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('decodes with sharp what the JPEG decoder refuses (CMYK), refuses a truncated JPEG, and HVP_JPEG_DECODER=sharp', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hvp-cmyk-'));
    try {
      await writeJpegFolder(dir, { images: 1, width: 40, height: 30, classes: 1, seed: 17 });
      const rgb = join(dir, 'c0', '0.jpg');
      const cmyk = join(dir, 'cmyk.jpg');
      await sharp(rgb).toColourspace('cmyk').jpeg({ quality: 90 }).toFile(cmyk);
      const img = await decodeImage(cmyk, 16);
      expect([img.height, img.width, img.pixels.length]).toEqual([16, 21, 3 * 16 * 21]);
      // A truncated file is an unreadable image (the loader skips it), not one completed with grey.
      const truncated = join(dir, 'truncated.jpg');
      await writeFile(truncated, (await readFile(rgb)).subarray(0, 400));
      await expect(decodeImage(truncated, 16)).rejects.toThrow(/truncated\.jpg: cannot decode/);
      expect(jpegAddonPath({ HVP_JPEG_DECODER: 'sharp' })).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('image folder decoded in worker threads', () => {
  for (const loadSize of [undefined, 16]) {
    it(`gives the same batches, bytes and skips as the calling thread (loadSize ${loadSize ?? 'none'})`, async () => {
      const here = await readAll(0, loadSize);
      expect(here.skipped).toBe(1);
      expect(here.skips).toEqual([[expect.any(Number), expect.stringMatching(/broken\.jpg: cannot decode/)]]);
      // Grey and RGBA images come out as 3 channels, the tall JPEGs with their own sizes.
      expect(here.batches.every((b) => b.channels === 3)).toBe(true);
      const sizes = here.batches.flatMap((b) => Array.from(b.widths, (w, i) => `${b.heights[i]}x${w}`));
      expect(new Set(sizes).size).toBe(5);
      for (const threads of [undefined, 1, 3]) {
        const pooled = await readAll(threads, loadSize);
        expect(pooled.skips).toEqual(here.skips);
        expect(pooled.batches.map(plain)).toEqual(here.batches.map(plain));
      }
    });
  }

  it('rejects a closed pool, and reports a file it cannot decode by name', async () => {
    const pool = new DecodePool(2);
    await expect(pool.decode(join(root, 'c1', 'broken.jpg'))).rejects.toThrow(/broken\.jpg: cannot decode/);
    const img = await pool.decode(join(root, 'c2', 'rgba.png'));
    expect([img.height, img.width, img.pixels.length]).toEqual([25, 25, 3 * 25 * 25]);
    await pool.close();
    await expect(pool.decode(join(root, 'c2', 'rgba.png'))).rejects.toThrow(/closed/);
    expect(() => new DecodePool(0)).toThrow(/positive integer/);
    // A worker that goes away fails the reads in flight with a clear error instead of leaving them hanging.
    const dying = new DecodePool(1);
    const read = dying.decode(join(root, 'c2', 'rgba.png'));
    await (dying as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0].worker.terminate();
    await expect(read).rejects.toThrow(/image decoding worker failed: exited with code/);
    expect(dying.isClosed).toBe(true);
    await expect(openImageFolder(root, 'train', { threads: -1 })).rejects.toThrow(/threads must be an integer >= 0/);
  });
});
