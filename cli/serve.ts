// `hvp serve`: the explorer page on localhost. The page runs the engine itself on the browser's WebGPU;
// this server only hands it files: the page's bundle, the checkpoint named on the command line, and
// samples of a data set (file and data set access stay in Node). Node's own http, no framework.

import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_FASHION_MNIST_DIR, openDataset, type Dataset } from '../hvp/data/index.js';
import { CHECKPOINT } from '../hvp/train/loop.js';

export const SERVE_HELP = `Usage: hvp serve [--run DIR | --checkpoint FILE] [--port N] [--data DIR]

Serves the HVP explorer on http://127.0.0.1:PORT/: a page that runs this project's engine on the
browser's WebGPU (navigator.gpu) to render V views per image with the training pipeline, score every
pair with the selection forward (heat map, hardest / easiest / random pair per image), and train a few
HVP steps live with a loss curve. Ctrl-C stops the server.

  --run DIR          offer DIR/${CHECKPOINT} (an hvp pretrain run) to the page
  --checkpoint FILE  offer this safetensors file: an hvp pretrain checkpoint, or a torchvision / DINO
                     backbone export (scored by its features; it cannot train)
  --data DIR         data set whose test images the page can sample (default: the built-in
                     Fashion-MNIST at ${DEFAULT_FASHION_MNIST_DIR}, when installed)
  --port N           port (default 8080; 0 picks a free one)
  --host H           address to listen on (default 127.0.0.1; the page needs localhost or https for WebCrypto)
  --page DIR         the built page (default: dist/explorer/, beside the CLI bundle)

Without a checkpoint the page starts a fresh small SimSiam; it can also load a checkpoint file and
your own images picked in the browser. The page is built by \`npm run build\` (dist/explorer/).`;

export interface ServeOptions {
  /** Directory of the built page (index.html, explorer.js, explorer.css). */
  pageDir: string;
  checkpoint?: string;
  /** Data set directory for /api/samples; null: none. */
  data?: string | null;
  port?: number;
  host?: string;
}

export interface ExplorerServer {
  url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};
const MAX_SAMPLES = 64;

function send(res: ServerResponse, code: number, body: string | Uint8Array, type = 'text/plain; charset=utf-8', headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

async function samples(ds: Dataset, url: URL): Promise<unknown> {
  const count = Number(url.searchParams.get('count') ?? 4);
  const offset = Number(url.searchParams.get('offset') ?? 0);
  if (!Number.isInteger(count) || count < 1 || count > MAX_SAMPLES) throw new Error(`count must be an integer in 1..${MAX_SAMPLES}, got ${url.searchParams.get('count')}`);
  if (!Number.isInteger(offset) || offset < 0 || offset + count > ds.length) throw new Error(`offset must leave ${count} images of the ${ds.length} in ${ds.name}, got ${url.searchParams.get('offset')}`);
  const images = await Promise.all(Array.from({ length: count }, (_, i) => ds.read(offset + i)));
  return {
    name: ds.name,
    channels: ds.channels,
    mean: ds.mean,
    std: ds.std,
    classes: ds.classes,
    images: images.map((im) => ({ height: im.height, width: im.width, label: im.label, pixels: Buffer.from(im.pixels).toString('base64') })),
  };
}

export async function startServer(opts: ServeOptions): Promise<ExplorerServer> {
  const pageDir = resolve(opts.pageDir);
  if (!existsSync(join(pageDir, 'explorer.js'))) throw new Error(`the explorer page is not built (no ${join(pageDir, 'explorer.js')}): run \`npm run build\``);
  const checkpoint = opts.checkpoint ? resolve(opts.checkpoint) : undefined;
  if (checkpoint && !(existsSync(checkpoint) && statSync(checkpoint).isFile())) throw new Error(`checkpoint ${checkpoint} does not exist`);
  // Opened once, on the first request for samples (IDX files load whole).
  let dataset: Promise<Dataset> | null = null;
  const data = opts.data === undefined ? (existsSync(DEFAULT_FASHION_MNIST_DIR) ? DEFAULT_FASHION_MNIST_DIR : null) : opts.data;
  const openData = () => (dataset ??= openDataset({ kind: 'auto', dir: data!, split: 'test' }));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET') return send(res, 405, 'only GET');
    if (url.pathname === '/api/info') {
      const ds = data ? await openData() : null;
      return send(res, 200, JSON.stringify({ checkpoint: checkpoint ? basename(checkpoint) : null, samples: ds && { name: ds.name, length: ds.length, channels: ds.channels } }), TYPES['.map']);
    }
    if (url.pathname === '/api/checkpoint') {
      if (!checkpoint) return send(res, 404, 'no checkpoint: start hvp serve with --checkpoint FILE or --run DIR');
      return send(res, 200, await readFile(checkpoint), 'application/octet-stream', { 'x-checkpoint-name': encodeURIComponent(basename(checkpoint)) });
    }
    if (url.pathname === '/api/samples') {
      if (!data) return send(res, 404, `no data set: install the built-in Fashion-MNIST (npm run setup -- --data) or pass --data DIR`);
      return send(res, 200, JSON.stringify(await samples(await openData(), url)), TYPES['.map']);
    }
    const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
    // Only the page's own files, by plain name: no path reaches outside pageDir.
    if (!/^[\w.-]+$/.test(name) || !TYPES[extname(name)]) return send(res, 404, `not found: ${url.pathname}`);
    const file = join(pageDir, name);
    if (!existsSync(file)) return send(res, 404, `not found: ${url.pathname}`);
    return send(res, 200, await readFile(file), TYPES[extname(name)]);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const msg = e instanceof Error ? e.message : String(e);
      console.error(`hvp serve: ${req.url}: ${msg}`);
      if (!res.headersSent) send(res, 500, msg);
      else res.end();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => ok());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((ok, fail) => {
        server.close((e) => (e ? fail(e) : ok()));
        // A browser keeps connections open; they would hold close() until they time out.
        server.closeAllConnections();
      }),
  };
}

export async function serveMain(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      run: { type: 'string' },
      checkpoint: { type: 'string' },
      data: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      page: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return console.log(SERVE_HELP);
  if (v.run && v.checkpoint) throw new Error('give --run DIR or --checkpoint FILE, not both');
  const port = Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer in 0..65535, got '${v.port}'`);
  const checkpoint = v.run ? join(v.run, CHECKPOINT) : v.checkpoint;
  if (v.run && !existsSync(checkpoint!)) throw new Error(`--run ${v.run}: no ${CHECKPOINT} in it (is it an hvp pretrain run directory?)`);
  if (v.data && !existsSync(v.data)) throw new Error(`--data ${v.data} does not exist`);
  // The CLI bundle (dist/hvp.js) has the page beside it in dist/explorer/.
  const pageDir = v.page ?? fileURLToPath(new URL('./explorer/', import.meta.url));
  const server = await startServer({ pageDir, checkpoint, data: v.data, port, host: v.host });
  console.log(`HVP explorer on ${server.url}${checkpoint ? ` (checkpoint ${checkpoint})` : ''}; Ctrl-C stops it`);
  await new Promise<void>((ok) => process.once('SIGINT', ok));
  await server.close();
}
