// The pretraining loop end to end on a tiny synthetic dataset: every method with and without HVP,
// NaN detection before any checkpoint, the run directory's files, the logged learning rate, the
// selection forward's batch-norm mode, resuming from the checkpoint's stored configuration, and
// configuration errors. Exact resume is test/resume.test.ts; divergence after a checkpoint,
// test/nan.test.ts; every setting's effect, test/settings.test.ts.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine, nn, Rng } from '../engine/index.js';
import { BatchLoader } from '../hvp/data/index.js';
import { createMethod, disposeMethod } from '../hvp/methods/index.js';
import { cosineLr } from '../hvp/methods/pair-method.js';
import { hvpStep } from '../hvp/train/hvp-step.js';
import { resolveConfig } from '../cli/pretrain.js';
import { applyValues, DEFAULTS, presetConfig, PRESETS, validateConfig } from '../hvp/train/config.js';
import { pretrain } from '../hvp/train/loop.js';
import { sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

const eng = sharedEngine;

describe('pretrain', () => {
  it('a run whose method is disposed leaves nothing allocated: runs one after another on one engine do not grow', async () => {
    // A fresh engine, so that other tests' tensors do not count. DINO holds the most state (teacher, centre, AdamW's moments).
    const e = await Engine.create();
    try {
      const run = async (seed: number) => {
        const c = tiny({ method: 'dino', views: 4, optimizer: 'adamw', localCrops: 2, localCropsUsed: 2, localSize: 8, trainLimit: 8, batchSize: 4, epochs: 1, seed });
        const r = await pretrain(c, { engine: e, dataset: syntheticDataset(3, 8), progress: false });
        expect(r.method.model.parameters().every((p) => !p.disposed)).toBe(true);
        disposeMethod(r.method);
        expect(r.method.model.parameters().every((p) => p.disposed)).toBe(true);
        await e.sync();
        return e.backend.memory();
      };
      const before = e.backend.memory();
      const first = await run(1);
      // What stays is the engine's one upload of the method's combination table (sharedCombinationTable).
      expect(first.inUse).toBe(before.inUse + 1);
      // The second run reuses the first's buffers: nothing more stays, and the pool creates no new buffer.
      const second = await run(2);
      expect(second.bytesInUse).toBe(first.bytesInUse);
      expect(second.created).toBe(first.created);
    } finally {
      e.destroy();
    }
  });

  it('SimSiam with HVP: logs selections and view parameters, saves config and checkpoint, loss finite', async () => {
    const c = tiny({ method: 'simsiam', views: 4, maxSteps: 3 });
    const r = await pretrain(c, { engine: await eng(), dataset: syntheticDataset(1), progress: false });
    expect(r.steps).toBe(3);
    expect(r.losses.every(Number.isFinite)).toBe(true);
    // SimSiam's loss is a negative mean cosine: within [-1, 1].
    expect(r.losses.every((l) => l >= -1 && l <= 1)).toBe(true);
    expect(existsSync(join(c.out, 'checkpoint.safetensors'))).toBe(true);
    expect(readFileSync(join(c.out, 'config.yaml'), 'utf8')).toContain('method: simsiam');
    const lines = readFileSync(join(c.out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([0, 1, 2]);
    const pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]];
    for (const l of lines) {
      expect(l.selected).toHaveLength(8);
      for (const s of l.selected) expect(pairs).toContainEqual(s);
      expect(l.score).toHaveLength(8);
      expect(l.views).toHaveLength(1);
      expect(l.views[0]).toHaveLength(4 * 8);
    }
  });

  it('a diverging run stops with a message naming the step', async () => {
    const c = tiny({ method: 'simsiam', views: 2, select: 'random', lr: 1e30, lrScaling: false, maxSteps: 6 });
    await expect(pretrain(c, { engine: await eng(), dataset: syntheticDataset(1), progress: false })).rejects.toThrow(/loss became (NaN|Infinity|-Infinity) at step \d/);
  });

  for (const method of ['simclr', 'dino'] as const) {
    for (const select of ['hardest', 'random'] as const) {
      it(`${method} ${select === 'random' ? 'without' : 'with'} HVP trains on RGB images`, async () => {
        const dino = method === 'dino';
        const c = tiny({
          method,
          select,
          views: select === 'random' ? 2 : 4,
          maxSteps: 2,
          optimizer: dino ? 'adamw' : 'sgd',
          localCrops: dino ? (select === 'random' ? 2 : 3) : 0,
          localCropsUsed: dino ? 2 : 0,
          localSize: 8,
        });
        const r = await pretrain(c, { engine: await eng(), dataset: syntheticDataset(3), progress: false });
        expect(r.losses).toHaveLength(2);
        expect(r.losses.every(Number.isFinite)).toBe(true);
        if (dino) expect(r.losses[0]).toBeGreaterThan(0);
      });
    }
  }
});

describe('pretrain iBOT', () => {
  for (const select of ['hardest', 'random'] as const) {
    it(`ibot ${select === 'random' ? 'without' : 'with'} HVP trains a ViT with masked patches`, async () => {
      const c = tiny({
        method: 'ibot',
        arch: 'vit_tiny',
        patchSize: 4,
        size: 8,
        select,
        views: select === 'random' ? 2 : 4,
        maxSteps: 2,
        batchSize: 4,
        optimizer: 'adamw',
        localCrops: 1,
        localSize: 4,
      });
      const r = await pretrain(c, { engine: await eng(), dataset: syntheticDataset(3), progress: false });
      expect(r.losses).toHaveLength(2);
      expect(r.losses.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
      if (select === 'hardest') {
        const lines = readFileSync(join(c.out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
        // iBOT selects the global pair only: one even and one odd global view.
        for (const s of lines[0].selected) expect([[0, 1], [0, 3], [2, 1], [2, 3]]).toContainEqual(s);
      }
    });
  }
});

describe('the step', () => {
  it('logs the learning rate each step trained with (SimSiam\'s cosine, not the next step\'s)', async () => {
    const c = tiny({ method: 'simsiam', views: 2, select: 'random', maxSteps: 4, epochs: 1, lrScaling: false, fixPredLr: false });
    await pretrain(c, { engine: await eng(), dataset: syntheticDataset(1), progress: false });
    const lines = readFileSync(join(c.out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const expected = [0, 1, 2, 3].map((s) => cosineLr(0.05, { step: s, epoch: 0, totalSteps: 4 }));
    expect(lines.map((l) => l.lr)).toEqual(expected);
    expect(new Set(expected).size).toBe(4);
  });

  it('puts batch norms back in training mode when the selection forward throws', async () => {
    const e = await eng();
    const c = tiny({ method: 'simsiam', views: 3 });
    const ds = syntheticDataset(1);
    const built = createMethod({ engine: e, config: c, channels: 1, stepsPerEpoch: 6, totalSteps: 12, rng: new Rng(0) });
    const method = { ...built, score: () => { throw new Error('scoring failed'); } };
    const loader = new BatchLoader(ds, { batchSize: 8, shuffle: false });
    const batch = (await loader.epochBatches(0)[Symbol.asyncIterator]().next()).value!;
    await expect(
      e.scopeAsync(() => hvpStep({ engine: e, method, config: c, mean: ds.mean, std: ds.std }, batch, { step: 0, epoch: 0, totalSteps: 12 })),
    ).rejects.toThrow('scoring failed');
    const norms = [...built.model.namedModules()].map(([, m]) => m).filter((m): m is nn.BatchNorm => m instanceof nn.BatchNorm);
    expect(norms.length).toBeGreaterThan(0);
    expect(norms.filter((m) => m.batchStatsOnly)).toEqual([]);
  });
});

describe('resuming from the checkpoint\'s configuration', () => {
  let out = '';
  const checkpointed = async () => {
    if (out) return out;
    const c = tiny({ method: 'simsiam', views: 3, maxSteps: 1, batchSize: 8, seed: 3 });
    await pretrain(c, { engine: await eng(), dataset: syntheticDataset(1), progress: false, stopAfter: 1 });
    out = c.out;
    return out;
  };

  it('takes every setting from the checkpoint, not from config.yaml or a preset, and lets --max-steps change', async () => {
    const dir = await checkpointed();
    // A damaged config.yaml is never read on resume.
    writeFileSync(join(dir, 'config.yaml'), '{{ not yaml');
    const c = (await resolveConfig(['--out', dir, '--resume', '--max-steps', '5', '--log-every', '2']))!;
    expect([c.method, c.views, c.seed, c.widths, c.batchSize, c.maxSteps, c.logEvery, c.resume, c.out]).toEqual(['simsiam', 3, 3, [4, 4, 8, 8], 8, 5, 2, true, dir]);
    // Repeating a stored value is not a contradiction.
    await expect(resolveConfig(['--out', dir, '--resume', '--seed', '3'])).resolves.toMatchObject({ seed: 3 });
  });

  it('a flag that contradicts the checkpoint is an error naming the flag and both values', async () => {
    const dir = await checkpointed();
    await expect(resolveConfig(['--out', dir, '--resume', '--batch-size', '16'])).rejects.toThrow(/--batch-size is 16 but the checkpoint's run has 8/);
    await expect(resolveConfig(['--out', dir, '--resume', '--lr', '0.1', '--views', '4'])).rejects.toThrow(/--lr is 0.1 but the checkpoint's run has 0.05; --views is 4 but the checkpoint's run has 3 \(.*only --epochs, --max-steps, --log-every, --time-every, --save-every, --out, --log-samples, --knn-every, --knn-bank, --knn-queries, --allow-shared-device may change on resume\)/);
    await expect(resolveConfig(['--out', dir, '--resume', '--preset', 'simsiam-cifar10'])).rejects.toThrow(/drop --preset/);
    // The library refuses the same, whoever built the configuration.
    const c = validateConfig({ ...(await resolveConfig(['--out', dir, '--resume']))!, momentum: 0.5 });
    await expect(pretrain(c, { engine: await eng(), dataset: syntheticDataset(1), progress: false })).rejects.toThrow(/--momentum is 0.5 but the checkpoint's run has 0.9/);
  });

  it('a missing or unreadable checkpoint is an error, never a fallback', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'hvp-empty-'));
    await expect(resolveConfig(['--out', empty, '--resume'])).rejects.toThrow(/no checkpoint at/);
    writeFileSync(join(empty, 'checkpoint.safetensors'), 'garbage');
    await expect(resolveConfig(['--out', empty, '--resume'])).rejects.toThrow(/checkpoint\.safetensors/);
  });
});

describe('configuration', () => {
  it('every preset parses and validates', () => {
    for (const name of Object.keys(PRESETS)) expect(() => validateConfig(presetConfig(name))).not.toThrow();
  });

  it('flags override the preset, with types from the defaults', async () => {
    const c = (await resolveConfig(['--preset', 'simsiam-cifar10', '--batch-size', '64', '--widths', '8,8,16,16', '--select=easiest', '--anchor']))!;
    expect(c.batchSize).toBe(64);
    expect(c.widths).toEqual([8, 8, 16, 16]);
    expect(c.select).toBe('easiest');
    expect(c.anchor).toBe(true);
    expect(c.method).toBe('simsiam');
  });

  it('bad settings say which flag to change', async () => {
    await expect(resolveConfig(['--batch-sise', '64'])).rejects.toThrow(/unknown setting 'batch-sise'/);
    await expect(resolveConfig(['--lr', 'fast'])).rejects.toThrow(/--lr: expects a number/);
    await expect(resolveConfig(['--select', 'hardestest'])).rejects.toThrow(/--select must be one of/);
    await expect(resolveConfig(['--method', 'dino', '--views', '3'])).rejects.toThrow(/must be even/);
    await expect(resolveConfig(['--method', 'ibot', '--arch', 'resnet18'])).rejects.toThrow(/needs a ViT/);
    expect(() => applyValues(DEFAULTS, { widths: '8,x' }, 'flag')).toThrow(/positive integers/);
  });

  it('a dataset smaller than a batch is a clear error', async () => {
    const c = tiny({ batchSize: 64 });
    await expect(pretrain(c, { engine: await eng(), dataset: syntheticDataset(1), progress: false })).rejects.toThrow(/fewer than one batch/);
  });
});
