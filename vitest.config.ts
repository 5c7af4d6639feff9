import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// Import .wgsl shaders and .yaml presets as strings, the same way esbuild's text loader does for the bundle.
const textAssets = {
  name: 'text-assets',
  enforce: 'pre' as const,
  load(id: string) {
    if (!id.endsWith('.wgsl') && !id.endsWith('.yaml')) return null;
    return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
  },
};

export default defineConfig({
  plugins: [textAssets],
  test: {
    include: ['test/**/*.test.ts'],
    // Temporary files of the whole run go into one directory, removed at its end (test/global-tmp.ts).
    globalSetup: ['test/global-tmp.ts'],
    // One WebGPU device per worker; lavapipe already uses every core, so run files one at a time.
    fileParallelism: false,
    // A limit only catches a hang. Shared or loaded machines run this suite many times slower than an
    // idle one (a ViT-B step alone can take minutes there), and a slow machine must not fail a test, so
    // one generous limit for every test and hook, none of their own.
    testTimeout: 1_200_000,
    hookTimeout: 1_200_000,
  },
});
