// A lost WebGPU device (a driver reset or GPU fault on real hardware; here the device destroyed, which
// Dawn reports through the same `lost` promise) fails every later launch, upload, readback and sync
// with a DeviceLostError, and a wait already in flight, even one the driver would never complete,
// rejects instead of hanging. A training run whose device is lost at step 3 stops with an error
// naming that step and the checkpoint to resume from, and that checkpoint (of step 2, the end of
// epoch 0) is untouched, loads into a fresh engine with the model exactly as it was when saved, and
// resumes to the end; lost before any checkpoint, the error says so. Every engine here is its own: a destroyed device cannot be shared.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeviceLostError, Engine, ops, Rng, type Tensor } from '../engine/index.js';
import { createMethod } from '../hvp/methods/index.js';
import type { Method } from '../hvp/methods/method.js';
import { CHECKPOINT, pretrain } from '../hvp/train/loop.js';
import { loadCheckpoint } from '../models/checkpoint.js';
import { syntheticDataset, tiny } from './train-helpers.js';

/** Resolves after pending callbacks and I/O have run (the device's `lost` promise among them). */
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Every tensor of a state dict, as bytes, read at once (each readback is queued before any later kernel). */
async function snapshot(dict: Record<string, Tensor>): Promise<Map<string, Buffer>> {
  const entries = Object.entries(dict);
  const data = await Promise.all(entries.map(([, t]) => t.toArray()));
  return new Map(entries.map(([n], i) => [n, Buffer.from(data[i].buffer, data[i].byteOffset, data[i].byteLength)]));
}

describe('the engine after its device is lost', () => {
  it('launches, uploads, readbacks and syncs fail with DeviceLostError carrying Dawn\'s reason', async () => {
    const e = await Engine.create();
    const x = e.keep(e.tensor([1, 2, 3]));
    expect(Array.from(await x.toArray())).toEqual([1, 2, 3]);
    e.backend.device.destroy();
    // The first readback may start before the `lost` promise has been delivered: it must still end.
    const first = await x.toArray().then(() => null, (err: unknown) => err);
    expect(first).toBeInstanceOf(DeviceLostError);
    expect((first as DeviceLostError).reason).toBe('destroyed');
    expect((first as DeviceLostError).message).toMatch(/^the WebGPU device was lost \(destroyed: .+\) during a readback$/);
    expect(e.backend.isLost).toBe(true);
    await expect(x.toArray()).rejects.toThrow(DeviceLostError);
    await expect(e.sync()).rejects.toThrow(/device was lost \(destroyed.*\) during a sync/);
    expect(() => e.scope(() => ops.add(x, x))).toThrow(/device was lost \(destroyed.*\) during the launch of /);
    expect(() => e.tensor([4, 5])).toThrow(/device was lost .* during an upload/);
    // Destroying a lost engine is allowed (cleanup paths call it).
    expect(() => e.destroy()).not.toThrow();
  });

  it('a readback in flight when the device goes rejects with DeviceLostError', async () => {
    const e = await Engine.create();
    const x = e.keep(e.randn([64, 64], new Rng(1)));
    const y = e.scope(() => e.keep(ops.matmul(x, x)));
    const reading = y.toArray();
    e.backend.device.destroy();
    await expect(reading).rejects.toThrow(DeviceLostError);
  });

  it('a mapAsync or onSubmittedWorkDone that never completes rejects once the device is lost', async () => {
    const e = await Engine.create();
    const x = e.keep(e.tensor([1, 2, 3]));
    await x.toArray();
    // Simulate a driver that never answers: every mapping and work-done wait stays pending.
    const proto = globalThis.GPUBuffer.prototype;
    const mapAsync = Object.getOwnPropertyDescriptor(proto, 'mapAsync')!;
    const queue = e.backend.device.queue;
    const never = () => new Promise<undefined>(() => {});
    Object.defineProperty(proto, 'mapAsync', { ...mapAsync, value: never });
    queue.onSubmittedWorkDone = never;
    try {
      const reading = x.toArray().then(() => null, (err: unknown) => err);
      const syncing = e.sync().then(() => null, (err: unknown) => err);
      await turn();
      e.backend.device.destroy();
      expect(await reading).toBeInstanceOf(DeviceLostError);
      expect(await syncing).toBeInstanceOf(DeviceLostError);
    } finally {
      Object.defineProperty(proto, 'mapAsync', mapAsync);
    }
  });
});

const LOST_AT = 3;

describe('a training run whose device is lost', () => {
  it('stops naming the step; the last checkpoint is unchanged, loads into a fresh engine as saved, and resumes', async () => {
    // 16 images of batch 8: 2 steps per epoch, 2 epochs; the checkpoint of epoch 0 is written at step 2.
    const c = tiny({ method: 'simsiam', views: 3, select: 'hardest', trainLimit: 16, epochs: 2 });
    const path = join(c.out, CHECKPOINT);
    const doomed = await Engine.create();
    const seen: { saved?: Promise<Map<string, Buffer>>; bytes?: Buffer } = {};
    const lose = (m: Method): Method => ({
      ...m,
      async trainStep(views, ctx, gather) {
        // The model as step 2 begins is the one the epoch-end checkpoint holds.
        if (ctx.step === 2) seen.saved = snapshot(m.model.stateDict());
        if (ctx.step === LOST_AT) {
          // Its readback finishes before the device goes (the loop reads step 2's results only after step 3).
          await seen.saved;
          seen.bytes = readFileSync(path);
          doomed.backend.device.destroy();
        }
        return m.trainStep(views, ctx, gather);
      },
    });
    const run = pretrain(c, { engine: doomed, dataset: syntheticDataset(1), progress: false, wrapMethod: lose });
    const err = await run.then(() => null, (x: unknown) => x as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/^the GPU device was lost at step 3 \(epoch 1, batch 1\) during .+ \(Dawn: destroyed, ".+"\); /);
    expect(err!.message).toContain(`the last checkpoint, ${path}, is from step 2: resume with --resume`);
    expect(err!.cause).toBeInstanceOf(DeviceLostError);

    // Untouched by the failed step, and it loads (its checksum verified) into a fresh engine.
    expect(readFileSync(path).equals(seen.bytes!)).toBe(true);
    const fresh = await Engine.create();
    const ds = syntheticDataset(1);
    const method = createMethod({ engine: fresh, config: c, channels: ds.channels, stepsPerEpoch: 2, totalSteps: 4, rng: new Rng(99) });
    const loaded = await loadCheckpoint(path, { model: method.model, optimizer: method.optimizer });
    expect(loaded.meta.step).toBe(2);
    const saved = await seen.saved!;
    const got = await snapshot(method.model.stateDict());
    expect([...got.keys()].sort()).toEqual([...saved.keys()].sort());
    expect([...got].filter(([n, b]) => !b.equals(saved.get(n)!)).map(([n]) => n)).toEqual([]);

    // --resume from it runs the two remaining steps.
    const resumed = await pretrain({ ...c, resume: true }, { engine: fresh, dataset: ds, progress: false });
    expect([resumed.steps, resumed.interrupted]).toEqual([2, false]);
    expect(resumed.losses.every(Number.isFinite)).toBe(true);
    fresh.destroy();
  });

  it('lost before the first checkpoint: the error says there is none to resume from', async () => {
    const c = tiny({ method: 'simsiam', views: 3, select: 'hardest', trainLimit: 16, epochs: 2 });
    const doomed = await Engine.create();
    const lose = (m: Method): Method => ({
      ...m,
      trainStep(views, ctx, gather) {
        if (ctx.step === 1) doomed.backend.device.destroy();
        return m.trainStep(views, ctx, gather);
      },
    });
    const run = pretrain(c, { engine: doomed, dataset: syntheticDataset(1), progress: false, wrapMethod: lose });
    await expect(run).rejects.toThrow(/^the GPU device was lost at step 1 \(epoch 0, batch 1\) during .+; no checkpoint was saved yet, so the run starts over$/);
    expect(existsSync(join(c.out, CHECKPOINT))).toBe(false);
  });
});
