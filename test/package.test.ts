// The package as another project gets it: `npm pack` after the build, the tarball installed into an
// empty project with npm, then a plain JavaScript consumer run there (an Engine, autograd, a kernel of
// its own, a ResNet HVP step with its own criterion, a checkpoint saved and loaded), a TypeScript
// consumer type-checked with `tsc --strict` against the shipped declarations, and examples/ run there.
//
// No network: the install runs `--offline` with an empty npm cache of its own. The package's runtime
// dependencies (the non-dev packages of package-lock.json) are linked into the project's node_modules
// beforehand from this repository's install, so npm finds them satisfied and only unpacks the tarball;
// the test therefore needs nothing but the `npm ci` the suite already runs on.

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');
let project = '';

/** The environment of a child npm or node: npm's settings of the `npm test` that started us removed. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, XDG_RUNTIME_DIR: env.XDG_RUNTIME_DIR ?? '/tmp' };
}

function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 2 ** 20 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`);
  }
}

/** The last line of a program's output that is a JSON object (Dawn prints warnings before it). */
function lastJson(out: string): Record<string, unknown> {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON line in:\n${out}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Top-level runtime dependencies of this repository's install (package-lock.json, dev packages left out). */
function runtimePackages(): string[] {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([p, v]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(p) && !v.dev && !v.devOptional && existsSync(join(root, p)))
    .map(([p]) => p.slice('node_modules/'.length));
}

beforeAll(() => {
  run(process.execPath, ['scripts/build.mjs'], root);
  const work = mkdtempSync(join(tmpdir(), 'hvp-package-'));
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root)) as { filename: string; files: { path: string }[] }[];
  const files = packed[0].files.map((f) => f.path);
  // Only what a consumer needs: built modules, declarations, the CLI, README and LICENSE, and what
  // the install script builds the optional native parts from (the MPI binding, the JPEG decoder).
  expect(files.filter((f) => !/^(dist\/(lib|types|explorer)\/|dist\/hvp\.js$|bin\/hvp\.js$|README\.md$|LICENSE$|package\.json$|scripts\/(build-mpi|build-jpeg|native-addon)\.mjs$|hvp\/distributed\/mpi\.c$|hvp\/data\/jpeg\.c$)/.test(f))).toEqual([]);
  for (const f of ['dist/lib/index.js', 'dist/lib/models.js', 'dist/lib/hvp.js', 'dist/lib/browser/index.js', 'dist/lib/browser/models.js', 'dist/types/engine/index.d.ts', 'LICENSE']) expect(files).toContain(f);

  project = join(work, 'consumer');
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  for (const name of runtimePackages()) {
    mkdirSync(dirname(join(project, 'node_modules', name)), { recursive: true });
    symlinkSync(realpathSync(join(root, 'node_modules', name)), join(project, 'node_modules', name), 'dir');
  }
  run('npm', ['install', join(work, packed[0].filename), '--offline', '--cache', join(work, 'npm-cache'), '--no-audit', '--no-fund', '--ignore-scripts'], project);
  // The package itself is unpacked from the tarball, not linked to this checkout.
  expect(lstatSync(join(project, 'node_modules/hvp-webgpu')).isSymbolicLink()).toBe(false);
  // Its own install script (the dependencies' were skipped above: they are this checkout's, installed)
  // runs from the tarball's files: it builds the optional native parts, or says why it cannot.
  run('npm', ['run', 'install'], join(project, 'node_modules/hvp-webgpu'));
  for (const f of ['consumer.mjs', 'consumer.ts']) copyFileSync(join(root, 'test/package', f), join(project, f));
  for (const f of readdirSync(join(root, 'examples'))) copyFileSync(join(root, 'examples', f), join(project, f));
});

describe('the packed package', () => {
  it('serves a JavaScript consumer: autograd, its own kernel, a ResNet HVP step with its own criterion, a checkpoint', () => {
    const out = lastJson(run(process.execPath, ['consumer.mjs'], project));
    expect(out.ok).toBe(true);
    expect(out.checkpointTensors).toBeGreaterThan(50);
  });

  it('type-checks a TypeScript consumer with tsc --strict against the shipped declarations', () => {
    // No @types/node and no skipLibCheck: the declarations stand on their own; DOM is the lib that
    // @webgpu/types (GPUBuffer, ...) builds on.
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [], skipLibCheck: false },
        files: ['consumer.ts'],
      }),
    );
    run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);
    // The same program with a type error fails: the declarations do constrain the consumer.
    writeFileSync(join(project, 'broken.ts'), "import { Engine } from 'hvp-webgpu';\nconst e: Engine = await Engine.create();\nexport const n: number = e.tensor([1]);\n");
    writeFileSync(join(project, 'tsconfig.broken.json'), JSON.stringify({ extends: './tsconfig.json', files: ['broken.ts'] }));
    expect(() => run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.broken.json'], project)).toThrow(/broken\.ts.*Type 'Tensor' is not assignable to type 'number'/s);
  });

  it('runs examples/least-overlap.mjs: every sample trains on its least-overlapping pair of crops', () => {
    const out = lastJson(run(process.execPath, ['least-overlap.mjs'], project)) as { pairs: number; chosenIou: number[]; leastIou: number[]; loss: number };
    expect(out.pairs).toBe(6);
    expect(out.chosenIou).toHaveLength(4);
    out.chosenIou.forEach((v, b) => expect(Math.abs(v - out.leastIou[b])).toBeLessThan(1e-6));
    expect(Number.isFinite(out.loss)).toBe(true);
  });

  it('runs examples/pretrain-folder.mjs on a generated image folder', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'hvp-folder-'));
    for (const [c, cls] of ['ants', 'bees'].entries()) {
      mkdirSync(join(folder, cls));
      for (let i = 0; i < 4; i++) {
        const [w, h] = [40 + 6 * i, 44];
        const px = Buffer.from(Array.from({ length: w * h * 3 }, (_, k) => (k * (7 + 6 * c) + 31 * i) % 256));
        await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(join(folder, cls, `${i}.png`));
      }
    }
    const outDir = join(folder, 'run');
    const out = lastJson(run(process.execPath, ['pretrain-folder.mjs', folder, outDir], project)) as { images: number; classes: string[]; steps: number; losses: number[]; checkpoint: string; checkpointStep: number };
    expect(out.images).toBe(8);
    expect(out.classes).toEqual(['ants', 'bees']);
    expect(out.steps).toBe(2);
    expect(out.losses.every(Number.isFinite)).toBe(true);
    expect(out.checkpoint).toBe(join(outDir, 'checkpoint.safetensors'));
    expect(out.checkpointStep).toBe(2);
  });

  it("runs examples/score-embeddings.mjs on PyTorch's embeddings: PyTorch's float64 scores, its hardest pairs", () => {
    const fixture = join(root, 'test/fixtures/simsiam_embeddings');
    const ref = JSON.parse(readFileSync(`${fixture}.json`, 'utf8')) as { pairs: number[][]; scores: number[][]; hardest: number[] };
    const out = lastJson(run(process.execPath, ['score-embeddings.mjs', `${fixture}.safetensors`], project)) as { pairs: number[][]; scores: number[][]; hardest: number[] };
    expect(out.pairs).toEqual(ref.pairs);
    expect(out.scores).toHaveLength(ref.scores.length);
    out.scores.forEach((row, b) => row.forEach((s, c) => expect(Math.abs(s - ref.scores[b][c])).toBeLessThan(1e-5)));
    // The chosen pair is PyTorch's hardest, up to float32 ties.
    out.hardest.forEach((c, b) => expect(ref.scores[b][c]).toBeGreaterThan(ref.scores[b][ref.hardest[b]] - 1e-5));
    expect(() => run(process.execPath, ['score-embeddings.mjs', `${fixture}.safetensors`, 'q'], project)).toThrow(/expected a \[V, B, D\] tensor 'q', found only p, z/);
  });
});
