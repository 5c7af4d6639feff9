// Every setting of `hvp pretrain` takes effect (the table in test/settings-table.ts): the SimSiam and
// SimCLR rows here, the DINO, ViT and iBOT rows in test/settings-methods.test.ts. A row per DEFAULTS
// key, checked below, so a setting added without a test fails this file.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, type TrainConfig } from '../hvp/train/config.js';
import { trainDataset } from '../hvp/train/loop.js';
import { describeRows, ELSEWHERE, TABLE, type Key } from './settings-table.js';

describe('the settings table', () => {
  it('has a row for every setting', () => {
    const covered = new Set([...Object.values(TABLE).flat().map((r) => r.key), ...ELSEWHERE]);
    expect((Object.keys(DEFAULTS) as Key[]).filter((k) => !covered.has(k))).toEqual([]);
  });
});

describeRows(['simsiam', 'simclr']);

describe('data settings', () => {
  // Two image folders of 3 and 5 PNGs of 20×30 px, in two classes.
  const root = mkdtempSync(join(tmpdir(), 'hvp-settings-data-'));
  const folder = (name: string, n: number) => {
    const dir = join(root, name);
    for (let i = 0; i < n; i++) mkdirSync(join(dir, `c${i % 2}`), { recursive: true });
    return dir;
  };
  const small = folder('small', 3);
  const large = folder('large', 5);
  beforeAll(async () => {
    for (const [dir, n] of [[small, 3], [large, 5]] as const) {
      for (let i = 0; i < n; i++) {
        const pixels = Buffer.alloc(20 * 30 * 3, 40 * i);
        await sharp(pixels, { raw: { width: 30, height: 20, channels: 3 } }).png().toFile(join(dir, `c${i % 2}`, `${i}.png`));
      }
    }
  });
  const base = { ...DEFAULTS, dataset: 'folder', data: small, loadSize: 10 } satisfies TrainConfig;

  it('data: another directory is another dataset', async () => {
    expect((await trainDataset(base)).length).toBe(3);
    expect((await trainDataset({ ...base, data: large })).length).toBe(5);
  });

  it('loadSize: the shorter side of decoded images', async () => {
    expect((await (await trainDataset(base)).read(0)).height).toBe(10);
    expect((await (await trainDataset({ ...base, loadSize: 16 })).read(0)).height).toBe(16);
  });

  it('dataset: the kind the directory is opened as', async () => {
    expect((await trainDataset({ ...base, dataset: 'auto' })).length).toBe(3);
    await expect(trainDataset({ ...base, dataset: 'cifar10' })).rejects.toThrow(/cifar|data_batch/i);
  });
});
