// One image file to uint8 RGB, channel-major: the decoding both the main thread (decodeImage) and the
// decode pool's worker threads run. decodeWith refers to nothing outside its own body, since the
// workers evaluate its source text with their own sharp.

import type sharpType from 'sharp';

export interface Decoded {
  /** uint8 RGB, channel-major (C, H, W). */
  pixels: Uint8Array;
  height: number;
  width: number;
}

/**
 * Decode `path` with `sharp`; greyscale is expanded and alpha dropped (PIL's convert('RGB')), and with
 * `loadSize` the shorter side is resized to it, aspect kept (`fit: outside` in a square box; JPEGs
 * shrink on load). Rejects with `<path>: cannot decode (...)` for a file libvips cannot read.
 */
export async function decodeWith(sharp: typeof sharpType, path: string, loadSize?: number): Promise<Decoded> {
  let img = sharp(path).removeAlpha().toColourspace('srgb');
  if (loadSize) img = img.resize({ width: loadSize, height: loadSize, fit: 'outside' });
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
  const chw = new Uint8Array(3 * plane);
  const g = chw.subarray(plane);
  const b = chw.subarray(2 * plane);
  for (let p = 0, q = 0; p < plane; p++, q += 3) {
    chw[p] = data[q];
    g[p] = data[q + 1];
    b[p] = data[q + 2];
  }
  return { pixels: chw, height: info.height, width: info.width };
}
