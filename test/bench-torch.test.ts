// The PyTorch peer of the training-step cases: detection returns a reason (never throws) when there is
// no interpreter or no torch; where torch is installed, torch_step.py times a tiny step and prints
// positive times, its networks have exactly our parameter counts, a network of another size is
// refused, and a step case through the harness records torch_ms and torch_ratio = torch_ms / ours_ms.

import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../engine/index.js';
import { runCases } from '../bench/main.js';
import { createTorchPeer, type TorchPeer } from '../bench/peers/torch.js';
import { FULL, NARROW, hvpStepCase, modelParams, stepConfig, torchStepSpec, type StepNet } from '../bench/cases/hvp-step.js';
import { markdownTable, progressLine, toRecord } from '../bench/report.js';
import { engine } from './helpers.js';

/** An executable that stands in for an interpreter: `body` is its shell script. */
function fakePython(name: string, body: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'hvp-fake-python-')), name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const found = await createTorchPeer();
const torch: TorchPeer | null = 'step' in found ? found : null;
if (!torch) console.warn(`bench-torch: the tests that run PyTorch are skipped: ${'reason' in found ? found.reason : ''}`);

const TINY: StepNet = { label: 'tiny', arch: 'resnet18', widths: [2, 3, 4, 5], size: 8, channels: 1, batch: 4, dim: 6, predDim: 3 };

describe('torch peer detection', () => {
  it('gives a reason, not a throw, when the interpreter does not exist', async () => {
    const r = await createTorchPeer({ pythons: ['/nonexistent/bin/python3'] });
    expect(r).toEqual({ reason: expect.stringMatching(/\/nonexistent\/bin\/python3: not found.*apt-get install python3-torch/) });
  });

  it('gives a reason when the interpreter cannot import torch, naming each one tried', async () => {
    const noTorch = fakePython('python3', `echo "ModuleNotFoundError: No module named 'torch'" >&2; exit 1`);
    const r = await createTorchPeer({ pythons: ['/nonexistent/python3', noTorch] });
    expect('reason' in r && r.reason).toMatch(/nonexistent\/python3: not found; .*python3: ModuleNotFoundError: No module named 'torch'/);
  });

  it('gives a reason when the interpreter hangs past the timeout', async () => {
    const hangs = fakePython('python3', 'sleep 30');
    const r = await createTorchPeer({ pythons: [hangs], timeoutMs: 300 });
    expect('reason' in r && r.reason).toMatch(/timed out after 0.3 s/);
  });

  it('a skipped peer goes into the record, its line and the table', () => {
    const c = hvpStepCase(TINY, 3, 0, true);
    const ours = { medianMs: 10, minMs: 9, runsMs: [10], method: 'wall' as const, wallMedianMs: 10, figures: { params: 7 }, torch: { skipped: 'no python3 with torch' } };
    const r = toRecord(c, ours, null);
    expect(r.torch_skipped).toBe('no python3 with torch');
    expect(r.torch_ms).toBeUndefined();
    expect(progressLine(r)).toContain('torch-cpu skipped (no python3 with torch)');
    expect(markdownTable([r]).split('\n')[0]).toContain('| torch-cpu (ms) | torch ratio | timing |');
    const timed = toRecord(c, { ...ours, torch: { medianMs: 25, minMs: 24, runsMs: [25], viewsMedianMs: 1, params: 7, threads: 2, version: '1.13' } }, null);
    expect([timed.torch_ms, timed.torch_ratio, timed.torch_params, timed.torch_threads]).toEqual([25, 2.5, 7, 2]);
    expect(markdownTable([timed]).split('\n')[2]).toContain('| 25.0 | 2.50× | wall |');
  });
});

describe.skipIf(!torch)('torch_step.py', () => {
  let e: Engine;
  beforeAll(async () => {
    e = await engine();
  });

  it('has exactly our parameter count for the bench networks and the tiny one', async () => {
    // The kit's ResNet-50 (standard stem, as at 224 px), narrow here: the layout is the same at full width.
    const r50: StepNet = { label: 'resnet50 narrow', arch: 'resnet50', widths: [8, 16, 32, 64], size: 64, channels: 3, batch: 2, dim: 32, predDim: 8, standardStem: true };
    for (const net of [NARROW, FULL, TINY, r50]) {
      const config = stepConfig(net, 4, 0);
      const ours = modelParams(e, net, config);
      expect(await torch!.params(torchStepSpec(net, config, {}, 0)), net.label).toBe(ours);
    }
  });

  it('refuses to time a network whose size differs from ours', async () => {
    const spec = torchStepSpec(TINY, stepConfig(TINY, 2, 0), {}, 12345);
    await expect(torch!.step(spec)).rejects.toThrow(/torch_step\.py \(random, batch 4, 1x8x8\): .* parameters and ours 12345/);
  });

  it('times tiny HVP (grey, selection at half size), random (RGB) and blurred (RGB above 32 px, standard stem) steps: positive times, one per repetition', async () => {
    const grey = torchStepSpec(TINY, stepConfig(TINY, 3, 4), { warmup: 1, reps: 3 }, 0);
    const rgbNet = { ...TINY, channels: 3 };
    const rgb = torchStepSpec(rgbNet, stepConfig(rgbNet, 2, 0), { warmup: 0, reps: 2 }, 0);
    const blurNet: StepNet = { ...rgbNet, size: 40, standardStem: true };
    const blurred = torchStepSpec(blurNet, stepConfig(blurNet, 2, 0), { warmup: 0, reps: 1 }, 0);
    for (const spec of [grey, rgb, blurred]) {
      const t = await torch!.step(spec);
      expect(t.runsMs).toHaveLength(spec.reps);
      for (const ms of [...t.runsMs, t.medianMs, t.minMs, t.viewsMedianMs]) expect(ms).toBeGreaterThan(0);
      expect(t.runsMs).toContain(t.medianMs);
      expect(t.threads).toBe(torch!.threads);
    }
  });

  it('an HVP step case through the harness records torch_ms, torch_ratio = torch_ms / ours_ms and both parameter counts', async () => {
    const [r] = await runCases(e, null, [hvpStepCase(TINY, 3, 0, true)], { reps: 1, warmup: 0 }, () => {}, torch);
    expect(r.torch_skipped).toBeUndefined();
    expect(r.torch_ms).toBeGreaterThan(0);
    expect(r.torch_ratio as number).toBeCloseTo((r.torch_ms as number) / r.ours_ms, 2);
    expect(r.torch_params).toBe(r.params);
    expect(r.torch_threads).toBe(torch!.threads);
  });
});
