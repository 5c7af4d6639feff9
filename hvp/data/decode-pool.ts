// Decoding image files off the main thread. The main thread also drives the GPU (Dawn's callbacks,
// kernel launches); a HWC→CHW pass per image there, at hundreds of images per second, is time the
// GPU waits. Worker threads, one per core, each decode JPEGs with the loader's own decoder (a
// synchronous call on the worker's own thread, see jpeg-addon.ts) and everything else with sharp
// (libvips), lay the pixels out channel-major, then hand the buffer over without a copy (a
// transferred ArrayBuffer).
//
// sharp's work itself runs on libuv's thread pool, which every worker shares: UV_THREADPOOL_SIZE
// threads (libuv's default 4) fixed when the process starts, before any of our code runs under an
// ES module entry. Where sharp decodes the JPEGs too (the decoder not built), a machine with more
// cores decodes on all of them only when the process is started with UV_THREADPOOL_SIZE at least the
// core count; the pool says so once when it is not.
//
// The workers run the very function the main thread's decodeImage runs (decodeWith, by its source
// text), so both paths give the same bytes; test/data-decode-pool.test.ts compares them.

import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodeWith, type Decoded } from './decode.js';
import { jpegAddonPath } from './jpeg-addon.js';

/** The worker's program: load sharp and the JPEG decoder from the paths the main thread resolved, decode what it is sent. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const sharp = require(workerData.sharp);
const jpeg = workerData.jpeg ? require(workerData.jpeg) : null;
const decodeWith = ${decodeWith.toString()};
parentPort.on('message', ({ id, path, loadSize }) => {
  decodeWith(sharp, path, loadSize, jpeg).then(
    (img) => parentPort.postMessage({ id, img }, [img.pixels.buffer]),
    (e) => parentPort.postMessage({ id, error: e instanceof Error ? e.message : String(e) }),
  );
});
`;

const UV_THREADS_AT_START = Number(process.env.UV_THREADPOOL_SIZE) || 4;

/** Threads of libuv's pool, which runs sharp's decodes (set by UV_THREADPOOL_SIZE when the process started). */
export function libuvThreads(): number {
  return Math.min(Math.max(Math.floor(UV_THREADS_AT_START), 1), 1024);
}

interface Pending {
  resolve: (img: Decoded) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Requests sent to this worker and not yet answered. */
  inFlight: number;
}

/** Worker threads that decode image files (sharp, then channel-major), their pixel buffers transferred back. */
export class DecodePool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  get isClosed(): boolean {
    return this.closed;
  }

  /** `size` worker threads (default: one per core), started on the first decode. */
  constructor(size = availableParallelism()) {
    if (!(Number.isInteger(size) && size > 0)) throw new Error(`DecodePool: size must be a positive integer, got ${size}`);
    this.size = size;
  }

  /** Decode `path` (shorter side resized to `loadSize`) to uint8 RGB CHW in a worker thread. */
  decode(path: string, loadSize?: number): Promise<Decoded> {
    if (this.closed) return Promise.reject(new Error('DecodePool: closed'));
    if (this.slots.length === 0) this.start();
    // The least busy worker: a slow file (a huge PNG) does not hold up the requests queued behind it.
    const slot = this.slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const id = this.nextId++;
    if (slot.inFlight++ === 0) slot.worker.ref();
    return new Promise<Decoded>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, path, loadSize });
    });
  }

  /** Stop the workers; decodes still in flight reject. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
    for (const p of this.pending.values()) p.reject(new Error('DecodePool: closed'));
    this.pending.clear();
  }

  private start(): void {
    // sharp is resolved here, where the bundle's own `import sharp` resolves it: the worker's code is
    // evaluated text, which would otherwise look for sharp from the current directory.
    const sharpPath = createRequire(import.meta.url).resolve('sharp');
    const jpeg = jpegAddonPath();
    if (!jpeg && this.size > libuvThreads() && !warnedThreads) {
      warnedThreads = true;
      console.warn(
        `image decoding: ${this.size} workers but libuv's pool has ${libuvThreads()} threads; ` +
          `start with UV_THREADPOOL_SIZE=${this.size} to decode on all of them`,
      );
    }
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sharp: sharpPath, jpeg } });
      const slot: Slot = { worker, inFlight: 0 };
      // An idle pool does not keep the process alive; a worker with requests in flight does.
      worker.unref();
      worker.on('message', (m: { id: number; img?: Decoded; error?: string }) => {
        if (--slot.inFlight === 0) worker.unref();
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve(m.img!);
      });
      worker.on('error', (e: Error) => this.fail(e));
      // A worker gone without an error event (terminated from outside) must not leave reads hanging.
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  /**
   * A worker that died (out of memory, a crash in a codec) fails every request in flight and closes
   * the pool; its owner starts a new one for later reads.
   */
  private fail(e: Error): void {
    if (this.closed) return;
    const error = new Error(`image decoding worker failed: ${e.message}`, { cause: e });
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    void this.close();
  }
}

let shared: DecodePool | null = null;
let warnedThreads = false;

/** The process's decode pool, one worker per core, shared by every image folder. */
export function sharedDecodePool(): DecodePool {
  // A pool that failed (a worker crashed) is replaced rather than failing every later read.
  if (!shared || shared.isClosed) shared = new DecodePool();
  return shared;
}
