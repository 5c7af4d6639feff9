// Resume through the built CLI in child processes: Ctrl-C (SIGINT) mid-run writes a checkpoint and
// `--resume` then ends with exactly the bytes of an uninterrupted run; a crash while a checkpoint is
// being written (a partial temporary file, never renamed) leaves the previous checkpoint in force.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FASHION_MNIST_DIR } from '../hvp/data/index.js';
import { CHECKPOINT } from '../hvp/train/loop.js';
import { readCheckpointMeta } from '../models/checkpoint.js';
import { differingTensors, readRunState, runDir } from './train-helpers.js';

const root = new URL('..', import.meta.url).pathname;
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
const FASHION = join(DEFAULT_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz');
const haveData = existsSync(FASHION) || process.env.HVP_REQUIRE_DATA === '1';
if (!haveData) console.warn(`test/resume-cli.test.ts: skipping: ${FASHION} is absent (node scripts/setup.mjs --data installs it)`);

// The first 64 Fashion-MNIST images in batches of 8: 8 steps per epoch, 2 epochs.
const SETTINGS = ['pretrain', '--method', 'simsiam', '--train-limit', '64', '--batch-size', '8', '--epochs', '2', '--widths', '4,4,8,8', '--size', '14', '--dim', '16', '--pred-dim', '8', '--views', '3', '--log-every', '1'];

type Run = { code: number | null; stdout: string; stderr: string };

/** Run the built CLI; `watch` may act on the child while it runs (it returns what to undo at exit). */
function hvp(args: string[], watch?: (child: ChildProcess) => () => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/hvp.js', ...args], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = watch?.(child);
    child.on('close', (code) => {
      done?.();
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run until the log holds the record of step 1, then send SIGINT (as Ctrl-C does). */
function interruptAfterStep1(args: string[], out: string): Promise<Run> {
  return hvp(args, (child) => {
    const poll = setInterval(() => {
      const log = join(out, 'log.jsonl');
      if (existsSync(log) && readFileSync(log, 'utf8').includes('"step":1,')) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 20);
    return () => clearInterval(poll);
  });
}

describe.skipIf(!haveData)('resume through the CLI', () => {
  it('SIGINT mid-run writes a checkpoint; --resume ends exactly where the uninterrupted run ends', async () => {
    execFileSync(process.execPath, ['scripts/build.mjs', '--no-lib'], { cwd: root });
    const full = runDir();
    const part = runDir();
    const a = await hvp([...SETTINGS, '--out', full]);
    expect(a.code, a.stderr).toBe(0);

    const b = await interruptAfterStep1([...SETTINGS, '--out', part], part);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/interrupted after \d+ steps/);
    const stopped = (await readCheckpointMeta(join(part, CHECKPOINT))).step;
    expect(stopped).toBeGreaterThanOrEqual(2);
    expect(stopped).toBeLessThan(16);

    // A crash while the next checkpoint was being written: its temporary file, cut short, never renamed.
    const tmp = join(part, `${CHECKPOINT}.tmp-999999`);
    writeFileSync(tmp, readFileSync(join(part, CHECKPOINT)).subarray(0, 1000));
    const c = await hvp(['pretrain', '--out', part, '--resume']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(new RegExp(`finished after ${16 - stopped} steps`));

    const want = readRunState(full);
    const got = readRunState(part);
    expect(got.step).toBe(16);
    expect(differingTensors(got, want)).toEqual([]);
    expect(got.optimizer).toBe(want.optimizer);
    expect(got.log).toEqual(want.log);
  });
});
