// The data side of HVP: data sets (IDX, CIFAR-10, image folders) behind one `Dataset` interface and
// the seeded, prefetching batch loader the training loop and the evaluators read from.

export * from './types.js';
export * from './idx.js';
export * from './cifar.js';
export * from './image-folder.js';
export { DecodePool, libuvThreads, sharedDecodePool } from './decode-pool.js';
export { jpegAddonPath, type JpegDecoder } from './jpeg-addon.js';
export type { Decoded } from './decode.js';
export * from './open.js';
export * from './loader.js';
export { pixelStats } from './stats.js';
