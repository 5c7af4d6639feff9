// Checkpoints: bit-exact round trip of model and optimizer state and of the metadata; training resumed
// from a checkpoint takes exactly the step the original takes; a corrupt, truncated or mismatched file is
// refused with an error naming the file, and leaves model and optimizer untouched; an interrupted save
// never replaces the previous checkpoint.

import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { io, ops, optim, type Engine, type Tensor } from '../engine/index.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint, type CheckpointMeta } from '../models/checkpoint.js';
import { engine } from './helpers.js';
import { bits, Net, stateBits } from './state-net.js';

const dir = mkdtempSync(join(tmpdir(), 'hvp-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const META: CheckpointMeta = {
  arch: 'resnet18',
  method: 'simsiam',
  epoch: 3,
  step: 1234,
  config: { lr: 0.05, views: [2, 6], name: 'run "a"', nested: { ok: true, none: null } },
  seed: 7,
  note: 'extra fields keep their type',
};

/** Two groups with different hyperparameters, so group round trips are visible. */
function sgd(net: Net, lr = 0.1): optim.SGD {
  const fc = [net.fc.weight, net.fc.bias!];
  const rest = net.parameters().filter((p) => !fc.includes(p));
  return new optim.SGD([{ params: fc }, { params: rest, lr: lr / 10, weightDecay: 0 }], { lr, momentum: 0.9, weightDecay: 1e-3 });
}

/** One training step of a squared-output loss: only fc gets gradients, so step counts differ per parameter. */
function trainStep(e: Engine, net: Net, opt: optim.Optimizer<optim.GroupHyper>, x: Tensor): void {
  e.scope(() => {
    net.zeroGrad();
    const y = net.forward(x);
    ops.mean(ops.mul(y, y)).backward();
    opt.step();
  });
}

async function optimizerBits(opt: optim.Optimizer<optim.GroupHyper>): Promise<unknown> {
  const d = opt.stateDict();
  const state = [];
  for (const s of d.state) state.push({ step: s.step, buffers: await stateBits(s.buffers) });
  return { groups: d.groups, state };
}

function releaseOptimizer(opt: optim.Optimizer<optim.GroupHyper>): void {
  for (const s of opt.stateDict().state) for (const t of Object.values(s.buffers)) t.dispose();
}

async function expectRefused(load: Promise<unknown>, message: RegExp, path: string): Promise<void> {
  const err = await load.then(() => null, (e: Error) => e);
  expect(err, 'the load was accepted').not.toBeNull();
  expect(err!.message.startsWith(`${path}: `), err!.message).toBe(true);
  expect(err!.message).toMatch(message);
}

describe('checkpoints', async () => {
  const e = await engine();
  const x = e.keep(e.tensor([0.3, -1.2, 0.5, 0.9, 2, -0.1, 0.7, -0.4], [2, 4]));

  /** A trained net and its optimizer, saved to `name`; the caller disposes them. */
  async function trainedCheckpoint(name: string, meta = META): Promise<{ path: string; net: Net; opt: optim.SGD }> {
    const net = new Net(e, 1);
    const opt = sgd(net);
    trainStep(e, net, opt, x);
    trainStep(e, net, opt, x);
    const path = join(dir, name);
    await saveCheckpoint(path, { model: net, optimizer: opt, meta });
    return { path, net, opt };
  }

  it('round trip: model, optimizer state (hyperparameters, steps, buffers) and metadata, bit-exact', async () => {
    const { path, net, opt } = await trainedCheckpoint('roundtrip.safetensors');
    const other = new Net(e, 2);
    const otherOpt = sgd(other, 0.7);
    const want = await stateBits(net.stateDict());
    const wantOpt = await optimizerBits(opt);
    expect(await optimizerBits(otherOpt)).not.toEqual(wantOpt);
    const result = await loadCheckpoint(path, { model: other, optimizer: otherOpt });
    expect(result).toEqual({ missing: [], unexpected: [], meta: META });
    expect(await stateBits(other.stateDict())).toEqual(want);
    expect(await optimizerBits(otherOpt)).toEqual(wantOpt);
    expect(opt.stateDict().state.map((s) => s.step)).toEqual([2, 2, 0, 0, 0, 0]);
    expect(await readCheckpointMeta(path)).toEqual(META);

    // The file a PyTorch user opens: model tensors under their own names, optimizer state apart.
    const { tensors, metadata } = io.readSafetensors(readFileSync(path));
    expect([...tensors.keys()].filter((n) => !n.startsWith('optimizer.')).sort()).toEqual(Object.keys(net.stateDict()).sort());
    expect(tensors.get('optimizer.0.momentumBuffer')!.shape).toEqual([3, 4]);
    expect(metadata).toMatchObject({ arch: 'resnet18', method: 'simsiam', epoch: '3', step: '1234', format_version: '1', seed: '7' });
    expect(JSON.parse(metadata.config)).toEqual(META.config);
    expect(metadata.checksum).toMatch(/^[0-9a-f]{64}$/);
    for (const m of [net, other]) m.dispose();
    for (const o of [opt, otherOpt]) releaseOptimizer(o);
  });

  it('training resumed from a checkpoint takes exactly the step the original takes', async () => {
    const { path, net, opt } = await trainedCheckpoint('resume.safetensors');
    const resumed = new Net(e, 5);
    const resumedOpt = sgd(resumed, 0.3);
    await loadCheckpoint(path, { model: resumed, optimizer: resumedOpt });
    const before = await stateBits(net.stateDict());
    trainStep(e, net, opt, x);
    trainStep(e, resumed, resumedOpt, x);
    const after = await stateBits(net.stateDict());
    expect(after['fc.weight']).not.toEqual(before['fc.weight']); // the step did something
    expect(await stateBits(resumed.stateDict())).toEqual(after);
    expect(await optimizerBits(resumedOpt)).toEqual(await optimizerBits(opt));
    for (const m of [net, resumed]) m.dispose();
    for (const o of [opt, resumedOpt]) releaseOptimizer(o);
  });

  it('AdamW state (betas, eps, steps, both moments) round-trips', async () => {
    const net = new Net(e, 1);
    const opt = new optim.AdamW(net.parameters(), { lr: 3e-3, betas: [0.8, 0.95], eps: 1e-7 });
    trainStep(e, net, opt, x);
    const path = join(dir, 'adamw.safetensors');
    await saveCheckpoint(path, { model: net, optimizer: opt, meta: META });
    const other = new Net(e, 2);
    const otherOpt = new optim.AdamW(other.parameters());
    await loadCheckpoint(path, { model: other, optimizer: otherOpt });
    expect(otherOpt.groups[0].betas).toEqual([0.8, 0.95]);
    expect(await optimizerBits(otherOpt)).toEqual(await optimizerBits(opt));
    for (const m of [net, other]) m.dispose();
    for (const o of [opt, otherOpt]) releaseOptimizer(o);
  });

  it('corrupt, truncated or mismatched files are refused and modify nothing', async () => {
    const { path, net, opt } = await trainedCheckpoint('good.safetensors');
    const good = readFileSync(path);
    const target = new Net(e, 9);
    const targetOpt = sgd(target, 0.2);
    const before = await stateBits(target.stateDict());
    const beforeOpt = await optimizerBits(targetOpt);
    const variant = (name: string, bytes: Uint8Array) => {
      const p = join(dir, name);
      writeFileSync(p, bytes);
      return p;
    };
    const flipped = good.slice();
    flipped[flipped.length - 5] ^= 0x10;
    const p1 = variant('flipped.safetensors', flipped);
    await expectRefused(loadCheckpoint(p1, { model: target, optimizer: targetOpt }), /checksum mismatch: the data section hashes to [0-9a-f]{64} but the header records/, p1);
    const p2 = variant('truncated.safetensors', good.subarray(0, good.length - 100));
    await expectRefused(loadCheckpoint(p2, { model: target }), /range \[\d+, \d+\) extends past the data section .* \(truncated file\?\)/, p2);
    const p3 = variant('head-only.safetensors', good.subarray(0, 20));
    await expectRefused(loadCheckpoint(p3, { model: target }), /header length \d+ exceeds the 12 bytes that follow it/, p3);
    await expectRefused(readCheckpointMeta(p3), /header length \d+ exceeds/, p3);

    const misShaped = new Net(e, 9, { fcOut: 2 });
    const misShapedOpt = sgd(misShaped);
    const adamw = new optim.AdamW(target.parameters());
    const oneGroup = new optim.SGD(target.parameters(), { lr: 1, momentum: 0.5 });
    await expectRefused(loadCheckpoint(path, { model: misShaped, optimizer: misShapedOpt }), /optimizer tensor 'optimizer\.0\.momentumBuffer' is F32 \[3,4\], expected F32 \[2,4\]/, path);
    await expectRefused(loadCheckpoint(path, { model: misShaped }), /mis-shaped: fc\.weight: expected \[2, 4\], got \[3, 4\]/, path);
    await expectRefused(loadCheckpoint(path, { model: target, optimizer: adamw }), /optimizer state is for SGD, not AdamW/, path);
    await expectRefused(loadCheckpoint(path, { model: target, optimizer: oneGroup }), /optimizer groups of sizes \[2, 4\] do not match this SGD's \[6\]/, path);
    const plain = variant('plain.safetensors', await io.moduleToSafetensors(net));
    await expectRefused(loadCheckpoint(plain, { model: target }), /not a checkpoint of this project \(no format_version/, plain);
    const noOpt = join(dir, 'no-optimizer.safetensors');
    await saveCheckpoint(noOpt, { model: net, meta: META });
    await expectRefused(loadCheckpoint(noOpt, { model: target, optimizer: targetOpt }), /holds no optimizer state .* SGD state was requested/, noOpt);

    expect(await stateBits(target.stateDict())).toEqual(before);
    expect(await optimizerBits(targetOpt)).toEqual(beforeOpt);
    for (const m of [net, target, misShaped]) m.dispose();
    for (const o of [opt, targetOpt, misShapedOpt, adamw, oneGroup]) releaseOptimizer(o);
  });

  it('strict and non-strict loads name missing, unexpected and mis-shaped model tensors', async () => {
    const { path, net, opt } = await trainedCheckpoint('strict.safetensors');
    const partial = new Net(e, 4, { extra: true, oneBlock: true });
    const before = await stateBits(partial.stateDict());
    const unexpected = ['layer1.1.conv1.bias', 'layer1.1.conv1.weight', 'layer1.1.num_batches_tracked', 'layer1.1.running_mean'];
    await expectRefused(loadCheckpoint(path, { model: partial }), new RegExp(`missing: extra\\.weight \\| unexpected: ${unexpected.join(', ').replaceAll('.', '\\.')}$`), path);
    expect(await stateBits(partial.stateDict())).toEqual(before);
    const result = await loadCheckpoint(path, { model: partial, strict: false });
    expect(result).toMatchObject({ missing: ['extra.weight'], unexpected }); // optimizer tensors are not "unexpected"
    expect(bits(await partial.fc.weight.toArray())).toEqual(bits(await net.fc.weight.toArray()));
    const both = new Net(e, 4, { extra: true, fcOut: 5 });
    await expectRefused(loadCheckpoint(path, { model: both, strict: false }), /mis-shaped: fc\.weight: expected \[5, 4\], got \[3, 4\]; fc\.bias: expected \[5\], got \[3\]$/, path);
    for (const m of [net, partial, both]) m.dispose();
    releaseOptimizer(opt);
  });

  it('an interrupted save never replaces the previous checkpoint; a failed save leaves no temporary', async () => {
    const { path, net, opt } = await trainedCheckpoint('atomic.safetensors', { ...META, epoch: 1 });
    const previous = readFileSync(path);
    // A crash after writing half of the next checkpoint leaves its temporary file, and only that.
    await saveCheckpoint(join(dir, 'next.safetensors'), { model: net, optimizer: opt, meta: { ...META, epoch: 2 } });
    const next = readFileSync(join(dir, 'next.safetensors'));
    const stale = `${path}.tmp-424242`;
    writeFileSync(stale, next.subarray(0, next.length >> 1));
    expect(readFileSync(path).equals(previous)).toBe(true);
    expect((await readCheckpointMeta(path)).epoch).toBe(1);
    const target = new Net(e, 8);
    expect((await loadCheckpoint(path, { model: target })).meta.epoch).toBe(1);

    // Saves that fail before or while writing keep the previous file byte for byte, and clean up after themselves.
    await expect(saveCheckpoint(path, { model: net, meta: { ...META, config: { lr: NaN } } })).rejects.toThrow(/meta\.config \(field 'lr'\) holds NaN/);
    await expect(saveCheckpoint(path, { model: net, meta: { ...META, checksum: 'x' } })).rejects.toThrow(/meta\.checksum is reserved/);
    const blocked = join(dir, 'blocked.safetensors');
    mkdirSync(join(blocked, 'occupied'), { recursive: true }); // rename onto a non-empty directory fails
    await expect(saveCheckpoint(blocked, { model: net, meta: META })).rejects.toThrow();
    expect(readFileSync(path).equals(previous)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual(['atomic.safetensors.tmp-424242']);

    // The next successful save replaces the checkpoint; the stale temporary of another process is left alone.
    await saveCheckpoint(path, { model: net, optimizer: opt, meta: { ...META, epoch: 2 } });
    expect((await readCheckpointMeta(path)).epoch).toBe(2);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual(['atomic.safetensors.tmp-424242']);
    for (const m of [net, target]) m.dispose();
    releaseOptimizer(opt);
  });
});
