// The package's library build: one ESM module per entry point (dist/lib/, shared code in common chunks
// so every entry sees the same Engine and Tensor classes), the engine again for browsers (dist/lib/browser/,
// `webgpu` stubbed as the explorer's bundle does), declarations from tsc (dist/types/) and the API
// reference from their doc comments (TypeDoc, dist/api/, any warning fails the build).
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { browserBundleOptions, nodeOnlyInputs } from './browser-bundle.mjs';

/** Package entry point → source; the keys are the file names under dist/lib and dist/types. */
export const LIB_ENTRIES = { index: 'engine/index.ts', models: 'models/index.ts', hvp: 'hvp/index.ts' };
/** Entries with a browser build (no Dawn, no Node built-ins): the engine and the models; `hvp` reads files. */
export const BROWSER_ENTRIES = { index: 'engine/index.ts', models: 'models/index.ts' };
/** Declarations of each entry, as tsc emits them under dist/types. */
export const TYPE_ENTRIES = { index: 'engine/index.d.ts', models: 'models/index.d.ts', hvp: 'hvp/index.d.ts' };

const TEXT_MODULE = /from ['"][^'"]*(\.wgsl|\.yaml|\?raw)['"]|import\(['"][^'"]*(\.wgsl|\.yaml|\?raw)['"]\)/;

function filesUnder(dir) {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? filesUnder(join(dir, n)) : [join(dir, n)]));
}

/** Run a Node script of a dev dependency; rejects when it fails. */
function run(bin, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} exited with ${code}`))));
  });
}

export async function buildLibrary({ plugins = [] } = {}) {
  rmSync('dist/lib', { recursive: true, force: true });
  rmSync('dist/types', { recursive: true, force: true });
  await build({
    entryPoints: LIB_ENTRIES,
    outdir: 'dist/lib',
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    loader: { '.wgsl': 'text', '.yaml': 'text' },
    external: ['webgpu', 'sharp'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
    plugins,
  });
  const browser = await build({ ...browserBundleOptions(), entryPoints: BROWSER_ENTRIES, outdir: 'dist/lib/browser', splitting: true, minify: false });
  const leaks = nodeOnlyInputs(browser.metafile);
  if (leaks.length) throw new Error(`the browser entry imports Node-only code: ${leaks.join(', ')}`);

  // Declarations and the reference are independent compilations of the same sources: run both at once.
  rmSync('dist/api', { recursive: true, force: true });
  await Promise.all([run('node_modules/typescript/bin/tsc', ['-p', 'tsconfig.lib.json']), run('node_modules/typedoc/bin/typedoc', ['--logLevel', 'Warn'])]);
  // The sources import shaders and presets as text; their declarations must not, or a consumer's
  // compiler would need the same loaders' module declarations.
  const leaky = filesUnder('dist/types').filter((f) => TEXT_MODULE.test(readFileSync(f, 'utf8')));
  if (leaky.length) throw new Error(`declarations import text modules: ${leaky.join(', ')}`);
  // GPU types (GPUBuffer, ...) are globals from @webgpu/types, which the declarations must name.
  for (const f of Object.values(TYPE_ENTRIES)) {
    const path = join('dist/types', f);
    writeFileSync(path, `/// <reference types="@webgpu/types" />\n${readFileSync(path, 'utf8')}`);
  }
}
