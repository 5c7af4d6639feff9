// A torchvision resnet18 state dict exported to safetensors by PyTorch (F16 weights, I64
// num_batches_tracked; scripts/fixtures/torchvision_export.py) loads through `hvp embed` and gives
// PyTorch's eval-mode features; the same weights through the library on an engine with the GPU kernel
// variants forced (the command opens its own engine with the default ones), so lavapipe covers the
// kernels a GPU would run through a network with trained weights.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { io } from '../engine/index.js';
import { backboneFromShapes, freeze, isBackboneTensor } from '../models/backbone.js';
import { embedMain } from '../cli/embed.js';
import { expectClose, gpuVariantEngine } from './helpers.js';
import { Nd } from './ref.js';
import { hashUniform, readFixture } from './ssl-fixtures.js';

interface ExportFixture {
  input_shape: number[];
  input_key: number;
  input_scale: number;
  features: number[];
}

const WEIGHTS = new URL('./fixtures/torchvision_resnet18.safetensors', import.meta.url).pathname;

function fixtureImages(fx: ExportFixture): Float32Array {
  const n = fx.input_shape.reduce((a, b) => a * b, 1);
  return Float32Array.from(hashUniform(fx.input_key, n), (v) => v * fx.input_scale);
}

function expectFeatures(got: ArrayLike<number>, fx: ExportFixture, label: string): void {
  const expected = Nd.from(fx.features, [fx.input_shape[0], 512]);
  const scale = Math.max(...fx.features.map(Math.abs));
  expectClose(Nd.from(got, [fx.input_shape[0], 512]), expected, { rtol: 1e-4, atol: 1e-5 * scale }, label);
}

describe('torchvision export', () => {
  it('hvp embed reproduces PyTorch eval-mode features of a torchvision resnet18 safetensors export', async () => {
    const fx = readFixture<ExportFixture>('torchvision_resnet18.json');
    const images = fixtureImages(fx);
    const dir = mkdtempSync(join(tmpdir(), 'hvp-tv-'));
    const input = join(dir, 'images.safetensors');
    writeFileSync(input, io.writeSafetensors({ images: { dtype: 'F32', shape: fx.input_shape, data: images } }));
    const out = join(dir, 'features.safetensors');
    await embedMain(['--arch', 'resnet18', '--weights', WEIGHTS, '--input', input, '--out', out]);
    const got = io.readSafetensors(readFileSync(out)).tensors.get('features')!;
    expect(got.shape).toEqual([fx.input_shape[0], 512]);
    expectFeatures(got.data, fx, 'features');
  });

  it('the GPU kernel variants give the same features from the same weights', async () => {
    const fx = readFixture<ExportFixture>('torchvision_resnet18.json');
    const e = await gpuVariantEngine();
    const tensors = [...io.readSafetensors(readFileSync(WEIGHTS)).tensors].filter(([n]) => isBackboneTensor('resnet18', n));
    const backbone = backboneFromShapes(e, 'resnet18', new Map(tensors.map(([n, t]) => [n, t.shape])));
    io.loadTensorsInto(backbone.module, tensors, { strict: true });
    backbone.module.eval();
    freeze(backbone.module);
    const got = await e.scopeAsync(async () => e.noGrad(() => backbone.features(e.tensor(fixtureImages(fx), fx.input_shape))).toArray());
    expectFeatures(got, fx, 'features (GPU kernels)');
    for (const p of backbone.module.parameters()) p.dispose();
  });
});
