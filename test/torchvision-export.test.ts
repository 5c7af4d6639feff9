// A torchvision resnet18 state dict exported to safetensors by PyTorch (F16 weights, I64
// num_batches_tracked; scripts/fixtures/torchvision_export.py) loads through `hvp embed` and gives
// PyTorch's eval-mode features.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { io } from '../engine/index.js';
import { embedMain } from '../cli/embed.js';
import { expectClose } from './helpers.js';
import { Nd } from './ref.js';
import { hashUniform, readFixture } from './ssl-fixtures.js';

interface ExportFixture {
  input_shape: number[];
  input_key: number;
  input_scale: number;
  features: number[];
}

describe('torchvision export', () => {
  it('hvp embed reproduces PyTorch eval-mode features of a torchvision resnet18 safetensors export', async () => {
    const fx = readFixture<ExportFixture>('torchvision_resnet18.json');
    const n = fx.input_shape.reduce((a, b) => a * b, 1);
    const images = Float32Array.from(hashUniform(fx.input_key, n), (v) => v * fx.input_scale);
    const dir = mkdtempSync(join(tmpdir(), 'hvp-tv-'));
    const input = join(dir, 'images.safetensors');
    writeFileSync(input, io.writeSafetensors({ images: { dtype: 'F32', shape: fx.input_shape, data: images } }));
    const out = join(dir, 'features.safetensors');
    const weights = new URL('./fixtures/torchvision_resnet18.safetensors', import.meta.url).pathname;
    await embedMain(['--arch', 'resnet18', '--weights', weights, '--input', input, '--out', out]);
    const got = io.readSafetensors(readFileSync(out)).tensors.get('features')!;
    expect(got.shape).toEqual([fx.input_shape[0], 512]);
    const expected = Nd.from(fx.features, [fx.input_shape[0], 512]);
    const scale = Math.max(...fx.features.map(Math.abs));
    expectClose(Nd.from(got.data, got.shape), expected, { rtol: 1e-4, atol: 1e-5 * scale }, 'features');
  });
});
