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
    // One WebGPU device per worker; lavapipe already uses every core, so run files one at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
