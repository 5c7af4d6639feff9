// The explorer page's bundle: the engine, models, views and selection built for the browser (esbuild,
// platform 'browser', ESM). WebGPU there is navigator.gpu; Dawn's Node module `webgpu` and the engine's
// engine/dawn-node.ts become a stub that throws, and any other Node API fails the build, so nothing
// Node-only reaches the page.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const EXPLORER_ENTRY = 'hvp/explorer/app.ts';
/** Static files served beside the bundle. */
export const EXPLORER_STATIC = ['hvp/explorer/index.html', 'hvp/explorer/explorer.css'];

const NODE_ONLY = "throw new Error('Dawn (npm webgpu) is Node-only; a browser uses navigator.gpu')";
const dawnStub = {
  name: 'dawn-stub',
  setup(b) {
    // The package, and the engine's module around it (instance flags, adapter listing, host checks).
    b.onResolve({ filter: /^webgpu$|\/dawn-node\.js$/ }, (args) => ({ path: args.path, namespace: 'dawn-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'dawn-stub' }, () => ({
      contents: `export function create() { ${NODE_ONLY}; }\nexport function createDawn() { ${NODE_ONLY}; }\nexport const globals = {};`,
      loader: 'js',
    }));
  },
};

/** esbuild options of a browser bundle (the page's, the package's browser entry): ESM, text assets, Dawn stubbed. */
export function browserBundleOptions() {
  return {
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    metafile: true,
    loader: { '.wgsl': 'text', '.yaml': 'text' },
    logLevel: 'warning',
    plugins: [dawnStub],
  };
}

/** Bundle the page into `outdir` (explorer.js, its source map, index.html, explorer.css); returns esbuild's metafile. */
export async function buildExplorer(outdir = 'dist/explorer') {
  mkdirSync(outdir, { recursive: true });
  const result = await build({ ...browserBundleOptions(), entryPoints: { explorer: EXPLORER_ENTRY }, outdir });
  for (const f of EXPLORER_STATIC) copyFileSync(f, join(outdir, f.replace(/^.*\//, '')));
  return result.metafile;
}

/** Inputs of a bundle that are Node-only (native addons, Node built-ins); empty for a clean browser bundle. */
export function nodeOnlyInputs(metafile) {
  const inputs = Object.keys(metafile.inputs).filter((p) => /node_modules\/(webgpu|sharp)\/|^node:/.test(p));
  const imports = Object.values(metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
  return [...inputs, ...imports];
}
