import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Import .wgsl shaders and .yaml presets as strings, the same way esbuild's text loader does for the bundle.
const textAssets = {
  name: 'text-assets',
  enforce: 'pre' as const,
  load(id: string) {
    if (!id.endsWith('.wgsl') && !id.endsWith('.yaml')) return null;
    return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
  },
};

/** Files that take minutes (they build the GPU kit, run mpirun jobs, or train many tiny runs); the rest keep vitest's order. */
const LONGEST = ['gpu-kit', 'distributed', 'settings-methods', 'settings', 'pretrain', 'study', 'explorer-browser', 'report-browser'];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const name = f.moduleId.split('/').pop()!.replace(/\.test\.ts$/, '');
      const i = LONGEST.indexOf(name);
      return i < 0 ? LONGEST.length : i;
    };
    const sorted = await super.sort(files);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

export default defineConfig({
  plugins: [textAssets],
  test: {
    include: ['test/**/*.test.ts'],
    // Temporary files of the whole run go into one directory, removed at its end (test/global-tmp.ts).
    globalSetup: ['test/global-tmp.ts'],
    // Two files at a time, each worker with its own WebGPU device. lavapipe spreads a large dispatch
    // over every core, but much of the suite waits on other things (pipeline compilation on one
    // thread, the host's encoding of small dispatches, child processes under mpirun, python, xz):
    // on the project's 2-core machine, 8 model and training files ran in 191-206 s two at a time
    // against 235-284 s one at a time, interleaved.
    fileParallelism: true,
    maxWorkers: 2,
    // The longest files first, so that no long file starts last while the other worker idles.
    sequence: { sequencer: LongestFirst },
    // A limit only catches a hang. Shared or loaded machines run this suite many times slower than an
    // idle one (a ViT-B step alone can take minutes there), and a slow machine must not fail a test, so
    // one generous limit for every test and hook, none of their own.
    testTimeout: 1_200_000,
    hookTimeout: 1_200_000,
  },
});
