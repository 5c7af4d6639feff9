// Resume through the built CLI in child processes: SIGINT (Ctrl-C) or SIGTERM (a scheduler's stop)
// mid-run writes the checkpoint of the step reached and exits 130 or 143, and `--resume` then ends
// with exactly the bytes of an uninterrupted run; so does a run killed outright (SIGKILL) after a
// --save-every checkpoint; a crash while a checkpoint is being written (a partial temporary file,
// never renamed) leaves the previous checkpoint in force.

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

type Run = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Run the built CLI; `watch` may act on the child while it runs (it returns what to undo at exit). */
function hvp(args: string[], watch?: (child: ChildProcess) => () => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/hvp.js', ...args], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = watch?.(child);
    child.on('close', (code, signal) => {
      done?.();
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Run until the log holds the record of step `after`, then send `signal` (`times` times, 20 ms apart). */
function signalAfterStep(args: string[], out: string, signal: NodeJS.Signals, after = 1, times = 1): Promise<Run> {
  return hvp(args, (child) => {
    let sent = 0;
    const poll = setInterval(() => {
      const log = join(out, 'log.jsonl');
      if (sent > 0 || (existsSync(log) && readFileSync(log, 'utf8').includes(`"step":${after},`))) {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        if (++sent === times) clearInterval(poll);
      }
    }, 20);
    return () => clearInterval(poll);
  });
}

/**
 * Resume `part` to the end and check it holds exactly the uninterrupted run's weights, optimizer state
 * and log. A run killed outright had logged steps past its checkpoint, which the resumed run logs again
 * (the log only appends): those must repeat their first records exactly, and the later one counts.
 */
async function expectResumedEqual(part: string, full: string, stopped: number, killed = false): Promise<void> {
  const c = await hvp(['pretrain', '--out', part, '--resume']);
  expect(c.code, c.stderr).toBe(0);
  expect(c.stdout).toMatch(new RegExp(`finished after ${16 - stopped} steps`));
  const want = readRunState(full);
  const got = readRunState(part);
  expect(got.step).toBe(16);
  expect(differingTensors(got, want)).toEqual([]);
  expect(got.optimizer).toBe(want.optimizer);
  if (!killed) return void expect(got.log).toEqual(want.log);
  const byStep = new Map<string, Record<string, unknown>>();
  for (const r of got.log) {
    const key = `${r.event ?? 'step'} ${r.step}`;
    if (byStep.has(key)) expect(r).toEqual(byStep.get(key));
    byStep.set(key, r);
  }
  expect([...byStep.values()]).toEqual(want.log);
}

let built = false;
/** The uninterrupted run every test compares with (run once). */
let reference: string | undefined;
async function fullRun(): Promise<string> {
  if (!built) execFileSync(process.execPath, ['scripts/build.mjs', '--no-lib'], { cwd: root });
  built = true;
  if (reference) return reference;
  const full = runDir();
  const a = await hvp([...SETTINGS, '--out', full]);
  expect(a.code, a.stderr).toBe(0);
  reference = full;
  return full;
}

describe.skipIf(!haveData)('resume through the CLI', () => {
  it('SIGINT mid-run writes a checkpoint and exits 130; --resume ends exactly where the uninterrupted run ends', async () => {
    const full = await fullRun();
    const part = runDir();
    const b = await signalAfterStep([...SETTINGS, '--out', part], part, 'SIGINT');
    expect(b.code, b.stderr).toBe(130);
    expect(b.stdout).toMatch(/interrupted after \d+ steps/);
    const stopped = (await readCheckpointMeta(join(part, CHECKPOINT))).step;
    expect(stopped).toBeGreaterThanOrEqual(2);
    expect(stopped).toBeLessThan(16);
    expect(b.stderr).toContain(`stopped by SIGINT at step ${stopped}; checkpoint ${join(part, CHECKPOINT)}; continue with: hvp pretrain --out ${part} --resume`);

    // A crash while the next checkpoint was being written: its temporary file, cut short, never renamed.
    const tmp = join(part, `${CHECKPOINT}.tmp-999999`);
    writeFileSync(tmp, readFileSync(join(part, CHECKPOINT)).subarray(0, 1000));
    await expectResumedEqual(part, full, stopped);
  });

  it('SIGTERM mid-run writes a checkpoint of the step reached and exits 143; --resume is bit-exact', async () => {
    const full = await fullRun();
    const part = runDir();
    // Stopped in the second epoch, between epoch checkpoints: the checkpoint can only come from the
    // signal. A second SIGTERM follows the first (an impatient scheduler): the run still finishes its
    // step, its checkpoint and its message.
    const b = await signalAfterStep([...SETTINGS, '--out', part], part, 'SIGTERM', 9, 2);
    expect(b.code, b.stderr).toBe(143);
    const stopped = (await readCheckpointMeta(join(part, CHECKPOINT))).step;
    expect(stopped).toBeGreaterThanOrEqual(10);
    expect(stopped).toBeLessThan(16);
    expect(b.stderr).toContain(`stopped by SIGTERM at step ${stopped};`);
    // The log's last record is the last step done: nothing ran past the checkpoint.
    expect(readRunState(part).log.at(-1)).toMatchObject({ step: stopped - 1 });
    await expectResumedEqual(part, full, stopped);
  });

  it('--save-every N writes mid-epoch checkpoints that a killed run (SIGKILL) resumes from bit for bit', async () => {
    const full = await fullRun();
    const part = runDir();
    // SIGKILL cannot be caught: what is on disk is the last checkpoint written, from --save-every
    // (step 3, 6, ...; mid-epoch) or an epoch's end (step 8).
    const b = await signalAfterStep([...SETTINGS, '--out', part, '--save-every', '3'], part, 'SIGKILL', 4);
    expect(b.signal).toBe('SIGKILL');
    const stopped = (await readCheckpointMeta(join(part, CHECKPOINT))).step;
    expect(stopped % 3 === 0 || stopped % 8 === 0, `checkpoint at step ${stopped}`).toBe(true);
    expect(stopped).toBeGreaterThanOrEqual(3);
    expect(stopped).toBeLessThan(16);
    await expectResumedEqual(part, full, stopped, true);
  });
});
