// The explorer's session in Node (the page runs the same class in the browser): a torchvision export
// loads as a frozen backbone whose pair scores are minus the cosine of the views' features, computed
// here in float64 from the backbone loaded the evaluation's way; changing V carries trained weights
// over; bad inputs fail with clear errors.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../engine/index.js';
import type { Image } from '../hvp/data/types.js';
import { loadBackbone } from '../hvp/eval/backbone.js';
import { BusyGuard, type Control } from '../hvp/explorer/busy.js';
import { ExplorerSession, freshConfig, guessArch, packImages } from '../hvp/explorer/session.js';
import { createMethod } from '../hvp/methods/index.js';
import { hvpStep } from '../hvp/train/hvp-step.js';
import { engine } from './helpers.js';

const TORCHVISION = new URL('./fixtures/torchvision_resnet18.safetensors', import.meta.url).pathname;

function randomImages(n: number, channels: number, h: number, w: number, seed: number): Image[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => ({ pixels: Uint8Array.from({ length: channels * h * w }, () => Math.floor(256 * rng.uniform())), height: h, width: w, label: i }));
}

describe('explorer session', () => {
  it('scores a torchvision export by −cos of its backbone features, and refuses to train it', async () => {
    const e = await engine();
    const bytes = readFileSync(TORCHVISION);
    expect(guessArch(bytes, TORCHVISION)).toBe('resnet18');
    const s = await ExplorerSession.load(e, bytes, TORCHVISION);
    expect(s.info()).toMatchObject({ kind: 'backbone', arch: 'resnet18', channels: 3, trainable: false });
    s.setImages(randomImages(2, 3, 30, 26, 1), { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    await s.configure({ views: 3, scaleMin: 0.3, scaleMax: 1, seed: 2 });
    const r = await s.score();

    const { backbone } = await loadBackbone(e, { checkpoint: TORCHVISION, arch: 'resnet18' });
    const x = e.tensor(r.pixels, [r.views * r.batch, r.channels, r.size, r.size]);
    const f = await e.scope(() => e.noGrad(() => backbone.features(x))).toArray();
    const d = f.length / (r.views * r.batch);
    const feat = (v: number, b: number) => f.subarray((v * r.batch + b) * d, (v * r.batch + b + 1) * d);
    for (let b = 0; b < r.batch; b++) {
      r.rows.forEach(([i, j], k) => {
        const [u, w] = [feat(i, b), feat(j, b)];
        let dot = 0;
        let nu = 0;
        let nw = 0;
        for (let t = 0; t < d; t++) {
          dot += u[t] * w[t];
          nu += u[t] * u[t];
          nw += w[t] * w[t];
        }
        expect(r.scores[b][k]).toBeCloseTo(-dot / Math.sqrt(nu * nw), 4);
      });
      const best = r.scores[b].indexOf(Math.max(...r.scores[b]));
      expect(r.scores[b][r.hardest[b]]).toBe(r.scores[b][best]);
      expect(r.scores[b][r.easiest[b]]).toBe(Math.min(...r.scores[b]));
    }
    await expect(s.train(1)).rejects.toThrow(/backbone-only checkpoint cannot train/);
  });

  it('keeps trained weights when V changes and back', async () => {
    const e = await engine();
    const s = ExplorerSession.fresh(e, 1, { widths: [4, 4, 8, 8], dim: 16, predDim: 8, views: 3, size: 16 });
    s.setImages(randomImages(4, 1, 20, 20, 3), { mean: [0.5], std: [0.25] });
    const before = await s.score();
    const losses = await s.train(1);
    expect(losses).toHaveLength(1);
    const trained = await s.score();
    expect(trained.scores).not.toEqual(before.scores);
    await s.configure({ ...s.settings(), views: 4 });
    expect((await s.score()).rows).toHaveLength(6);
    await s.configure({ ...s.settings(), views: 3 });
    const back = await s.score();
    expect(back.scores).toEqual(trained.scores);
    expect(back.hardest).toEqual(trained.hardest);
  });

  it('names what is wrong with the images', async () => {
    const e = await engine();
    const s = ExplorerSession.fresh(e, 1, { widths: [4, 4, 4, 4], dim: 8, predDim: 4, size: 12 });
    expect(() => s.setImages(randomImages(1, 1, 8, 8, 0), { mean: [0.5], std: [0.25] })).toThrow(/at least 2 images, got 1/);
    expect(() => s.setImages(randomImages(2, 3, 8, 8, 0), { mean: [0.5], std: [0.25] })).toThrow(/image 0 holds 192 bytes, not 1×8×8/);
    expect(() => s.setImages(randomImages(2, 1, 8, 8, 0), { mean: [0.5, 0.5], std: [0.25, 0.25] })).toThrow(/2\/2 values for a 1-channel model/);
    await expect(s.score()).rejects.toThrow(/no images yet/);
  });

  it('scores the candidates hvpStep draws: the same view parameters and the same --limit combinations', async () => {
    const e = await engine();
    const over = { widths: [4, 4, 8, 8], dim: 16, predDim: 8, views: 4, size: 16, limit: 2, seed: 4 };
    const s = ExplorerSession.fresh(e, 1, over);
    const images = randomImages(3, 1, 20, 18, 5);
    const stats = { mean: [0.5], std: [0.25] };
    s.setImages(images, stats);
    const r = await s.score();
    const config = { ...freshConfig(over), batchSize: 3 };
    const method = createMethod({ engine: e, config, channels: 1, stepsPerEpoch: 1, totalSteps: 1000, rng: new Rng(config.seed) });
    const step = await e.scopeAsync(async () => {
      const x = await hvpStep({ engine: e, method, config, ...stats }, packImages(images, 1), { step: 0, epoch: 0, totalSteps: 1000 });
      return { rows: x.rows, params: x.params };
    });
    expect(r.rows).toHaveLength(2);
    expect(r.rows).toEqual(step.rows);
    expect(r.params).toEqual(step.params[0]);
  });

  it('runs one action at a time: controls disabled while it runs, a second call refused before it touches the engine', async () => {
    const e = await engine();
    const s = ExplorerSession.fresh(e, 1, { widths: [4, 4, 4, 4], dim: 8, predDim: 4, size: 12, views: 3 });
    s.setImages(randomImages(2, 1, 14, 14, 7), { mean: [0.5], std: [0.25] });
    const train: Control = { disabled: false };
    const score: Control = { disabled: false };
    let trainable = true;
    const guard = new BusyGuard(() => [train, score], (c) => c !== train || trainable);
    const first = guard.run('training', () => s.train(2));
    expect([train.disabled, score.disabled, guard.busy]).toEqual([true, true, 'training']);
    await expect(guard.run('scoring', () => s.score())).rejects.toThrow(/scoring must wait: training is still running/);
    expect(await first).toHaveLength(2);
    expect([train.disabled, score.disabled, guard.busy]).toEqual([false, false, null]);
    // After an action the controls follow what the page allows (a backbone-only model cannot train).
    trainable = false;
    await guard.run('scoring', () => s.score());
    expect([train.disabled, score.disabled]).toEqual([true, false]);
    // A failing action releases the guard too.
    await expect(guard.run('failing', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(guard.busy).toBeNull();
    expect(s.info().step).toBe(2);
  });
});
