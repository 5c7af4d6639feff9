// `hvp embed` end to end: weights and images in safetensors files, features out, compared with the
// model's own eval-mode forward; and the errors a user meets first.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { io, Rng } from '../engine/index.js';
import { resnet18, vitTiny } from '../models/index.js';
import { embedMain } from '../cli/embed.js';
import { engine, expectClose } from './helpers.js';
import { Nd } from './ref.js';

const dir = mkdtempSync(join(tmpdir(), 'hvp-embed-'));

function imagesFile(name: string, shape: number[], rng: Rng): { path: string; data: Float32Array } {
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const path = join(dir, name);
  writeFileSync(path, io.writeSafetensors({ images: { dtype: 'F32', shape, data } }));
  return { path, data };
}

describe('hvp embed', async () => {
  const e = await engine();

  it('writes the eval-mode features of a ResNet loaded from a state dict, in batches', async () => {
    const rng = new Rng(11);
    const model = resnet18(e, { inChannels: 1, smallImage: true, widths: [8, 16, 16, 32], numClasses: 10 }, rng);
    // Give the running statistics non-trivial values so eval mode differs from batch statistics.
    model.train();
    e.scope(() => {
      model.forward(e.randn([4, 1, 12, 12], rng));
    });
    const weights = join(dir, 'resnet.safetensors');
    writeFileSync(weights, await io.moduleToSafetensors(model));
    const input = imagesFile('images.safetensors', [5, 1, 12, 12], rng);
    const out = join(dir, 'features.safetensors');
    await embedMain(['--arch', 'resnet18', '--weights', weights, '--input', input.path, '--out', out, '--batch', '2']);

    const got = io.readSafetensors(readFileSync(out)).tensors.get('features')!;
    expect(got.shape).toEqual([5, 32]);
    model.eval();
    const expected = await e.scopeAsync(async () => {
      const x = e.tensor(input.data, [5, 1, 12, 12]);
      return e.noGrad(() => model.forwardFeatures(x)).toArray().then((a) => {
        // forward() would apply the fc; the embedding is the pooled layer4 output.
        const f = new Float64Array(5 * 32);
        const hw = a.length / (5 * 32);
        for (let i = 0; i < 5 * 32; i++) for (let k = 0; k < hw; k++) f[i] += a[i * hw + k] / hw;
        return f;
      });
    });
    expectClose(Nd.from(got.data, [5, 32]), new Nd(expected, [5, 32]), { rtol: 1e-4, atol: 1e-5 }, 'features');
  });

  it('embeds with a ViT (CLS token), reading patch size and resolution from the weights', async () => {
    const rng = new Rng(12);
    const model = vitTiny(e, { patchSize: 4, imgSize: 8, inChannels: 3 }, rng);
    const weights = join(dir, 'vit.safetensors');
    writeFileSync(weights, await io.moduleToSafetensors(model));
    const input = imagesFile('vit-images.safetensors', [3, 3, 8, 8], rng);
    const out = join(dir, 'vit-features.safetensors');
    await embedMain(['--arch', 'vit_tiny', '--weights', weights, '--input', input.path, '--out', out]);
    const got = io.readSafetensors(readFileSync(out)).tensors.get('features')!;
    model.eval();
    const expected = await e.scopeAsync(async () => e.noGrad(() => model.forward(e.tensor(input.data, [3, 3, 8, 8]))).toArray());
    expectClose(Nd.from(got.data, [3, 192]), Nd.from(expected, [3, 192]), { rtol: 1e-4, atol: 1e-5 }, 'vit features');
  });

  it('says what is wrong with bad input', async () => {
    const rng = new Rng(13);
    const model = resnet18(e, { inChannels: 3, smallImage: true, widths: [8, 8, 8, 8] }, rng);
    const weights = join(dir, 'rgb.safetensors');
    writeFileSync(weights, await io.moduleToSafetensors(model));
    const grey = imagesFile('grey.safetensors', [2, 1, 8, 8], rng);
    const out = join(dir, 'x.safetensors');
    await expect(embedMain(['--arch', 'resnet18', '--weights', weights, '--input', grey.path, '--out', out])).rejects.toThrow(/1 channels but the resnet18 weights expect 3/);
    await expect(embedMain(['--arch', 'resnet99', '--weights', weights, '--input', grey.path, '--out', out])).rejects.toThrow(/unknown --arch 'resnet99'/);
    await expect(embedMain(['--arch', 'vit_tiny', '--weights', weights, '--input', grey.path, '--out', out])).rejects.toThrow(/no tensor 'patch_embed.proj.weight'/);
    await expect(embedMain(['--arch', 'resnet18', '--input', grey.path, '--out', out])).rejects.toThrow(/--weights is required/);
    const noImages = join(dir, 'noimages.safetensors');
    writeFileSync(noImages, io.writeSafetensors({ pixels: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }));
    await expect(embedMain(['--arch', 'resnet18', '--weights', weights, '--input', noImages, '--out', out])).rejects.toThrow(/no tensor named 'images'/);
  });
});

// PyTorch's strict load_state_dict accepts a state dict without the batch-norm counters
// (num_batches_tracked, absent from many exports) and fills them with 0; so must we, through the
// library and through the built CLI, while any other missing or extra name stays an error.
describe('state dicts PyTorch accepts', async () => {
  const e = await engine();
  const fixture = new URL('./fixtures/torchvision_resnet18.safetensors', import.meta.url).pathname;
  const tv = io.readSafetensors(readFileSync(fixture), { source: fixture }).tensors;
  const counters = [...tv.keys()].filter((n) => n.endsWith('num_batches_tracked'));
  /** The fixture's tensors as F32 (its F16 weights widen exactly), counters dropped or stored as I32. */
  function variant(name: string, opts: { counters: 'absent' | 'i32'; drop?: string[]; extra?: boolean }): string {
    const out: Record<string, io.SafeTensor> = {};
    for (const [n, t] of tv) {
      if (opts.drop?.includes(n)) continue;
      if (n.endsWith('num_batches_tracked')) {
        if (opts.counters === 'i32') out[n] = { dtype: 'I32', shape: [], data: Int32Array.of(t.data[0] + 7) };
        continue;
      }
      out[n] = { dtype: t.dtype, shape: t.shape, data: t.data };
    }
    if (opts.extra) out['layer9.weight'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
    const path = join(dir, name);
    writeFileSync(path, io.writeSafetensors(out));
    return path;
  }

  it('the fixture has the 20 I64 counters the variants below change', () => {
    expect(counters).toHaveLength(20);
    expect(tv.get('bn1.num_batches_tracked')!.stored).toBe('I64');
  });

  it('loads a resnet18 state dict without num_batches_tracked (counters become 0), and with I32 counters', () => {
    const model = resnet18(e, { numClasses: 0 }, new Rng(1));
    const count = (m: typeof model) => Promise.all(counters.map((n) => m.stateDict()[n].toArray().then((a) => a[0])));
    // Non-zero counters first, so the load visibly resets them.
    for (const n of counters) io.loadTensorsInto(model, [[n, { dtype: 'I32', shape: [], data: Int32Array.of(5) }]], { strict: false });
    const absent = variant('tv-no-counters.safetensors', { counters: 'absent' });
    const r = io.loadSafetensorsInto(model, readFileSync(absent), { strict: true, source: absent });
    expect(r.missing).toEqual([]);
    return count(model)
      .then((c) => expect(c).toEqual(new Array(20).fill(0)))
      .then(() => {
        const i32 = variant('tv-i32-counters.safetensors', { counters: 'i32' });
        io.loadSafetensorsInto(model, readFileSync(i32), { strict: true, source: i32 });
        return count(model);
      })
      .then(async (c) => {
        const original = await Promise.all(counters.map((n) => tv.get(n)!.data[0] + 7));
        expect(c).toEqual(original);
        for (const t of Object.values(model.stateDict())) t.dispose();
      });
  });

  it('still refuses a real mismatch, naming the keys', () => {
    const model = resnet18(e, { numClasses: 0 }, new Rng(2));
    const missing = variant('tv-missing.safetensors', { counters: 'absent', drop: ['bn1.running_mean', 'layer1.0.conv1.weight'] });
    expect(() => io.loadSafetensorsInto(model, readFileSync(missing), { source: missing })).toThrow(/missing: layer1\.0\.conv1\.weight, bn1\.running_mean$/);
    const extra = variant('tv-extra.safetensors', { counters: 'absent', extra: true });
    expect(() => io.loadSafetensorsInto(model, readFileSync(extra), { source: extra })).toThrow(/unexpected: layer9\.weight/);
    for (const t of Object.values(model.stateDict())) t.dispose();
  });

  it('hvp embed (the built CLI, in a child process) embeds the export without counters as with them', async () => {
    const root = new URL('..', import.meta.url).pathname;
    execFileSync(process.execPath, ['scripts/build.mjs', '--no-lib'], { cwd: root });
    const rng = new Rng(14);
    const input = imagesFile('tv-images.safetensors', [2, 3, 32, 32], rng);
    const embed = (weights: string, out: string) => {
      execFileSync(process.execPath, ['dist/hvp.js', 'embed', '--arch', 'resnet18', '--weights', weights, '--input', input.path, '--out', out], {
        cwd: root,
        env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
        stdio: 'pipe',
      });
      return io.readSafetensors(readFileSync(out)).tensors.get('features')!;
    };
    const withCounters = embed(fixture, join(dir, 'tv-f-with.safetensors'));
    const without = embed(variant('tv-cli-no-counters.safetensors', { counters: 'absent' }), join(dir, 'tv-f-without.safetensors'));
    expect(without.shape).toEqual([2, 512]);
    // Eval mode never reads the counters: the features are the same bits.
    expect(Buffer.from(without.data.buffer).equals(Buffer.from(withCounters.data.buffer))).toBe(true);
    const bad = variant('tv-cli-missing.safetensors', { counters: 'absent', drop: ['layer4.1.bn2.running_var'] });
    let stderr = '';
    try {
      embed(bad, join(dir, 'tv-f-bad.safetensors'));
    } catch (err) {
      stderr = String((err as { stderr?: Buffer }).stderr);
    }
    expect(stderr).toMatch(/missing: layer4\.1\.bn2\.running_var/);
    expect(stderr).not.toMatch(/num_batches_tracked/);
  });
});
