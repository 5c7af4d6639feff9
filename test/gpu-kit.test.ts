// The GPU kit end to end on lavapipe: builds it from this checkout (scripts/gpu-kit.mjs), copies it to a
// temporary folder with no node_modules, and runs `run.sh --quick` there with a PATH that holds sh, tar,
// gzip, python3 and the few coreutils run.sh calls, and no node: the kit must bring its own. Then the
// self-check passed, the bench wrote its records, results.md exists, and the kit is at most 36 MiB.
// The kit is built into gpu-kit/ of the checkout (git-ignored), so a second run reuses its compressed node.

import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const KIT_LIMIT = 36 * 2 ** 20;
/** What run.sh calls besides python3 (and what `sh` itself is). */
const TOOLS = ['sh', 'tar', 'gzip', 'dirname', 'mkdir', 'rm', 'chmod', 'cat'];

/** A folder of links to `TOOLS` and to the real python3 interpreter (not a pyenv shim, which needs more on PATH). */
function barePath(dir: string): string {
  mkdirSync(dir);
  for (const t of TOOLS) {
    const where = spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
    if (where) symlinkSync(where, join(dir, t));
  }
  const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  symlinkSync(python, join(dir, 'python3'));
  return dir;
}

describe('npm run gpu-kit', () => {
  it('builds a kit of at most 36 MiB that runs run.sh --quick on lavapipe without node or node_modules', async () => {
    const kitDir = join(ROOT, 'gpu-kit');
    execFileSync(process.execPath, ['scripts/gpu-kit.mjs'], { cwd: ROOT, stdio: 'inherit' });
    const files = readdirSync(kitDir);
    const bytes = files.reduce((s, f) => s + statSync(join(kitDir, f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(KIT_LIMIT);
    for (const part of ['node.tar.xz', 'dawn.tar.xz', 'app.tar.xz', 'vulkan.tar.gz', 'run.sh', 'run-kit.mjs', 'MANIFEST.json']) expect(files).toContain(part);

    const place = mkdtempSync(join(tmpdir(), 'hvp-kit-test-'));
    cpSync(kitDir, join(place, 'kit'), { recursive: true });
    const bin = barePath(join(place, 'bin'));
    const env = { PATH: bin, HOME: place, TMPDIR: tmpdir() };
    expect(spawnSync('sh', ['-c', 'command -v node'], { env }).status, 'no node on the kit\'s PATH').not.toBe(0);
    expect(existsSync(join(place, 'node_modules'))).toBe(false);

    const out = join(place, 'out');
    // A budget no machine reaches with --quick: the test checks what the run produces, not its speed.
    const run = spawnSync(join(bin, 'sh'), [join(place, 'kit/run.sh'), '--quick', '--budget', '7200', '--fixtures', join(ROOT, 'test/fixtures'), out], { cwd: place, env, encoding: 'utf8' });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output.slice(-4000)).toBe(0);
    expect(output).toContain('== doctor');
    expect(output).toContain('PyTorch CUDA peer skipped');

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.selfcheck.passed).toBe(true);
    expect(results.selfcheck.kernels).toBe('gpu');
    const checks: string[] = results.selfcheck.results.map((r: { name: string }) => r.name);
    for (const family of ['matmul', 'conv2d', 'softmax', 'layer_norm', 'batch_norm', 'attention', 'max_pool2d', 'interpolate', 'score simsiam', 'select hardest', 'resnet18', 'vit_tiny']) {
      expect(checks.some((n) => n.startsWith(family)), family).toBe(true);
    }
    const records: { name: string; ours_ms: number }[] = results.bench.records;
    const names = records.map((r) => r.name);
    for (const name of ['matmul', 'conv2d fwd', 'attention fwd', 'score simsiam', 'random step resnet18 8/16/32/64', 'hvp step resnet18 8/16/32/64', 'random step resnet50 (quick)', 'hvp step resnet50 (quick)', 'dino step vit_small/16 dino (quick)']) {
      expect(names, name).toContain(name);
    }
    expect(records.every((r) => r.ours_ms > 0)).toBe(true);
    // The loader's JPEG decoder travels with its libjpeg where this checkout built it: unpacked, it
    // decodes a JPEG with the kit's lib/ on the library path.
    if (existsSync(join(ROOT, 'build/jpeg.node'))) {
      expect(files).toContain('jpeg.tar.gz');
      const jpegDir = join(place, 'jpeg');
      mkdirSync(jpegDir);
      execFileSync('tar', ['xzf', join(place, 'kit/jpeg.tar.gz'), '-C', jpegDir]);
      const jpeg = join(jpegDir, 'probe.jpg');
      await sharp({ create: { width: 20, height: 12, channels: 3, background: '#808080' } }).jpeg().toFile(jpeg);
      const probe = `const r = require(${JSON.stringify(join(jpegDir, 'app/build/jpeg.node'))}).decodeFile(${JSON.stringify(jpeg)}, 6); console.log(r.height, r.width)`;
      const decoded = spawnSync(process.execPath, ['-e', probe], { env: { ...process.env, LD_LIBRARY_PATH: join(jpegDir, 'lib') }, encoding: 'utf8' });
      expect(decoded.status, decoded.stderr).toBe(0);
      expect(decoded.stdout.trim()).toBe('6 10');
      expect(existsSync(join(jpegDir, 'lib/libjpeg.so.62'))).toBe(true);
    }
    expect(results.bench.skipped).toEqual([]);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toContain('## Self-check: passed');
  });
});
