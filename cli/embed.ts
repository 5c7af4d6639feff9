// `hvp embed`: features of a frozen backbone for a batch of images, in eval mode.

import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine, io, fmt } from '../engine/index.js';
import { backboneFromShapes, freeze, isBackboneTensor, parseArch, BACKBONE_ARCHS } from '../models/backbone.js';
import { verifyChecksum } from '../models/checkpoint.js';
import { Progress } from '../hvp/progress.js';

export const EMBED_HELP = `Usage: hvp embed --arch ARCH --weights W.safetensors --input X.safetensors --out Y.safetensors [options]

Runs a backbone in eval mode (no classifier head) and writes its features: globally average-pooled
activations for ResNets, the CLS token for ViTs.

  --arch ARCH        ${BACKBONE_ARCHS.join(' | ')}
  --weights FILE     a safetensors state dict with torchvision / DINO names (a torchvision export,
                     or an hvp checkpoint); input channels, small-image stem, widths, patch size and
                     resolution are read from the tensor shapes
  --prefix P         use only tensors named P<name> (e.g. 'backbone.'), with P removed
  --input FILE       safetensors with a float32 tensor 'images' [B, C, H, W], already normalised
  --out FILE         output safetensors with 'features' [B, F]
  --batch N          images per forward (default 64)`;

export async function embedMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string' },
      weights: { type: 'string' },
      prefix: { type: 'string', default: '' },
      input: { type: 'string' },
      out: { type: 'string' },
      batch: { type: 'string', default: '64' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return console.log(EMBED_HELP);
  for (const req of ['arch', 'weights', 'input', 'out'] as const) {
    if (!values[req]) throw new Error(`--${req} is required (see hvp embed --help)`);
  }
  const arch = parseArch(values.arch!);
  const batch = Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch must be a positive integer, got '${values.batch}'`);

  const weightBytes = await readFile(values.weights!);
  const header = io.readSafetensorsHeader(weightBytes, weightBytes.length, values.weights!);
  await verifyChecksum(weightBytes, header, values.weights!, false);
  const { tensors } = io.readSafetensors(weightBytes, { source: values.weights! });
  const prefix = values.prefix!;
  const selected = new Map(
    [...tensors]
      .filter(([n]) => n.startsWith(prefix))
      .map(([n, t]) => [n.slice(prefix.length), t] as const)
      .filter(([n]) => !n.startsWith('optimizer.') && isBackboneTensor(arch, n)),
  );
  if (selected.size === 0) throw new Error(`${values.weights}: no tensor names start with '${prefix}'`);

  const inputBytes = await readFile(values.input!);
  const images = io.readSafetensors(inputBytes, { source: values.input! }).tensors.get('images');
  if (!images) throw new Error(`${values.input}: no tensor named 'images' (expected float32 [B, C, H, W])`);
  if (images.shape.length !== 4 || images.dtype !== 'F32') {
    throw new Error(`${values.input}: 'images' must be float32 [B, C, H, W], got ${images.dtype} ${fmt(images.shape)}`);
  }

  const engine = await Engine.create();
  const backbone = backboneFromShapes(engine, arch, new Map([...selected].map(([n, t]) => [n, t.shape])));
  io.loadTensorsInto(backbone.module, selected, { strict: true, source: values.weights! });
  backbone.module.eval();
  freeze(backbone.module);
  const [b, c, h, w] = images.shape;
  if (c !== backbone.inChannels) {
    throw new Error(`${values.input}: images have ${c} channels but the ${arch} weights expect ${backbone.inChannels}`);
  }

  const per = c * h * w;
  const features = new Float32Array(b * backbone.featureDim);
  const progress = new Progress('embed', b, 'image');
  for (let start = 0; start < b; start += batch) {
    const n = Math.min(batch, b - start);
    const out = await engine.scopeAsync(async () =>
      engine.noGrad(() => {
        const x = engine.tensor(images.data.subarray(start * per, (start + n) * per), [n, c, h, w]);
        return backbone.features(x);
      }).toArray(),
    );
    for (const v of out) if (!Number.isFinite(v)) throw new Error(`embed: non-finite feature in images ${start}..${start + n - 1}`);
    features.set(out, start * backbone.featureDim);
    progress.update(start + n);
  }
  progress.done();
  const bytes = io.writeSafetensors(
    { features: { dtype: 'F32', shape: [b, backbone.featureDim], data: features } },
    { arch, weights: values.weights!, prefix },
  );
  await writeFile(values.out!, bytes);
  console.log(`wrote ${values.out}: features [${b}, ${backbone.featureDim}]`);
  engine.destroy();
}
