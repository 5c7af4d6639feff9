// `hvp embed` end to end: weights and images in safetensors files, features out, compared with the
// model's own eval-mode forward; and the errors a user meets first.

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
