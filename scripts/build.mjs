// Bundle the CLI and the bench with esbuild. WGSL shaders and YAML presets are imported as text;
// native addons (`webgpu`, `sharp`) stay external.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entries = { hvp: 'cli/main.ts', bench: 'bench/run.ts' };
const extra = process.argv.slice(2);
// With arguments, bundle just those files (scratch scripts); otherwise the CLI and the bench.
const entryPoints = extra.length
  ? Object.fromEntries(extra.map((p) => [p.replace(/^.*\/|\.ts$/g, ''), p]))
  : Object.fromEntries(Object.entries(entries).filter(([, path]) => existsSync(path)));

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
});
