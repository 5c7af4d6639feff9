// Bundle the CLI and the bench with esbuild, the explorer page for the browser (dist/explorer/,
// what `hvp serve` serves), and the library (scripts/build-lib.mjs: dist/lib, dist/types, dist/api).
// WGSL shaders and YAML presets are imported as text; native addons (`webgpu`, `sharp`) stay external.
import { build } from 'esbuild';
import { buildExplorer, nodeOnlyInputs } from './browser-bundle.mjs';
import { buildLibrary } from './build-lib.mjs';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// selfcheck: the test suite's kernel and model checks as a program (test/selfcheck/), for the GPU kit.
const entries = { hvp: 'cli/main.ts', bench: 'bench/run.ts', selfcheck: 'test/selfcheck/main.ts' };
// `--no-lib` skips the library (declarations and API reference take most of the build's time): the
// demo, the bench, the server and the CLI's tests use only the CLI, the bench and the explorer page.
const noLib = process.argv.includes('--no-lib');
const extra = process.argv.slice(2).filter((a) => a !== '--no-lib');
// With arguments, bundle just those files (scratch scripts); otherwise the CLI and the bench.
const entryPoints = extra.length
  ? Object.fromEntries(extra.map((p) => [p.replace(/^.*\/|\.ts$/g, ''), p]))
  : Object.fromEntries(Object.entries(entries).filter(([, path]) => existsSync(path)));

// `import text from 'pkg/file.js?raw'`: a file's text (vite's convention, which the tests' vitest follows),
// for libraries the report inlines into its HTML.
const require = createRequire(import.meta.url);
const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: require.resolve(args.path.slice(0, -4), { paths: [args.resolveDir] }), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

await build({
  entryPoints,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  loader: { '.wgsl': 'text', '.yaml': 'text' },
  external: ['webgpu', 'sharp'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
  plugins: [rawText],
});

if (!extra.length) {
  const leaks = nodeOnlyInputs(await buildExplorer('dist/explorer'));
  if (leaks.length) throw new Error(`the explorer's browser bundle imports Node-only code: ${leaks.join(', ')}`);
  if (!noLib) await buildLibrary({ plugins: [rawText] });
}
