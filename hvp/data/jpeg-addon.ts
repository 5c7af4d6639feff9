// The loader's own JPEG decoder (hvp/data/jpeg.c, built by scripts/build-jpeg.mjs into build/jpeg.node
// when a C compiler and libjpeg's headers are there): libjpeg-turbo plus Pillow's bilinear resize,
// synchronous, called by the decode workers. Where it is not built, or with HVP_JPEG_DECODER=sharp,
// JPEGs decode with sharp like every other format.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { builtAddonCandidates } from '../native-addon.js';

/** The addon's one function: a JPEG file to uint8 RGB channel-major, shorter side resized to loadSize (0: none). */
export interface JpegDecoder {
  /** Decode the JPEG at `path`; throws for a file it does not take (not a JPEG, CMYK, corrupt). */
  decodeFile(path: string, loadSize: number): { pixels: ArrayBuffer; height: number; width: number };
}

/** The built decoder's path, or null (not built, or HVP_JPEG_DECODER=sharp). */
export function jpegAddonPath(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.HVP_JPEG_DECODER === 'sharp') return null;
  return builtAddonCandidates('jpeg.node').find((p) => existsSync(p)) ?? null;
}

let loaded: JpegDecoder | null | undefined;

/** The decoder, loaded once on this thread, or null where jpegAddonPath finds none. */
export function loadJpegDecoder(): JpegDecoder | null {
  if (loaded === undefined) {
    const path = jpegAddonPath();
    loaded = path ? (createRequire(import.meta.url)(path) as JpegDecoder) : null;
  }
  return loaded;
}
