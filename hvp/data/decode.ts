// One image file to uint8 RGB, channel-major: the decoding both the main thread (decodeImage) and the
// decode pool's worker threads run. decodeWith refers to nothing outside its own body, since the
// workers evaluate its source text with their own sharp.

import type sharpType from 'sharp';
import type { JpegDecoder } from './jpeg-addon.js';

/** A decoded image: its pixels, channel-major, and its size. */
export interface Decoded {
  /** uint8 RGB, channel-major (C, H, W). */
  pixels: Uint8Array;
  height: number;
  width: number;
}

/**
 * Decode `path` with the loader's JPEG decoder (`jpeg`, for .jpg/.jpeg files; see jpeg-addon.ts) or
 * with `sharp`; greyscale is expanded and alpha dropped (PIL's convert('RGB')), and with
 * `loadSize` the shorter side is resized to it, aspect kept (`fit: outside` in a square box; JPEGs
 * shrink on load). Rejects with `<path>: cannot decode (...)` for a file libvips cannot read.
 *
 * The resize is bilinear with antialiasing (libvips widens the triangle filter by the shrink factor),
 * the filter of torchvision's `Resize` on PIL images, which the reference pipelines load with: on
 * photographs it lands within 1 grey level of PIL's on average, where Lanczos-3 (sharp's default)
 * differs by 2 and sharpens. It is also the cheaper filter: fewer taps, and no sine per tap.
 */
export async function decodeWith(sharp: typeof sharpType, path: string, loadSize?: number, jpeg?: JpegDecoder | null): Promise<Decoded> {
  // JPEGs first through the loader's own decoder where it is built: PIL's pixels and PIL's resize,
  // byte for byte. A file it refuses (CMYK, corrupt, not a JPEG after all) goes to sharp.
  if (jpeg && /\.jpe?g$/i.test(path)) {
    try {
      const { pixels, height, width } = jpeg.decodeFile(path, loadSize ?? 0);
      return { pixels: new Uint8Array(pixels), height, width };
    } catch {
      // sharp decodes it, or reports why it cannot.
    }
  }
  let img = sharp(path).removeAlpha().toColourspace('srgb');
  if (loadSize) img = img.resize({ width: loadSize, height: loadSize, fit: 'outside', kernel: 'linear' });
  const { data, info } = await img
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((e: Error) => {
      // libvips repeats its warnings over several lines; the first says what is wrong.
      throw new Error(`${path}: cannot decode (${e.message.trim().split('\n')[0]})`);
    });
  if (info.channels !== 3) throw new Error(`${path}: decoded to ${info.channels} channels, expected RGB`);
  // HWC → CHW, one output plane per channel.
  const plane = info.height * info.width;
  // Every byte is written below, so no zero-fill; unpooled, so the buffer can be transferred alone.
  const chwBuf = Buffer.allocUnsafeSlow(3 * plane);
  const chw = new Uint8Array(chwBuf.buffer, chwBuf.byteOffset, 3 * plane);
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (plane % 4 === 0 && data.byteOffset % 4 === 0 && littleEndian) {
    // Four pixels at a time: three 32-bit words in (r0 g0 b0 r1 | g1 b1 r2 g2 | b2 r3 g3 b3), one
    // word out per plane; a third of the time of the byte loop below.
    const src = new Uint32Array(data.buffer, data.byteOffset, (3 * plane) >> 2);
    const dst = new Uint32Array(chw.buffer);
    const quads = plane >> 2;
    for (let i = 0, j = 0; i < quads; i++, j += 3) {
      const a = src[j];
      const b = src[j + 1];
      const c = src[j + 2];
      dst[i] = (a & 0xff) | ((a >>> 24) << 8) | (((b >>> 16) & 0xff) << 16) | (((c >>> 8) & 0xff) << 24);
      dst[quads + i] = ((a >>> 8) & 0xff) | ((b & 0xff) << 8) | ((b >>> 24) << 16) | (((c >>> 16) & 0xff) << 24);
      dst[2 * quads + i] = ((a >>> 16) & 0xff) | (((b >>> 8) & 0xff) << 8) | ((c & 0xff) << 16) | ((c >>> 24) << 24);
    }
  } else {
    const g = chw.subarray(plane);
    const b = chw.subarray(2 * plane);
    for (let p = 0, q = 0; p < plane; p++, q += 3) {
      chw[p] = data[q];
      g[p] = data[q + 1];
      b[p] = data[q + 2];
    }
  }
  return { pixels: chw, height: info.height, width: info.width };
}
