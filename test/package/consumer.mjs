// A plain JavaScript program that uses the installed package as any project would (test/package.test.ts
// runs it in a fresh project where the packed tarball was installed). It asserts what it computes and
// prints one JSON line of results.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, Rng, defineKernel, ops } from 'hvp-webgpu';
import { ResNet } from 'hvp-webgpu/models';
import { DEFAULTS, createMethod, hvpStep, loadCheckpoint, packBatch, saveCheckpoint, validateConfig } from 'hvp-webgpu/hvp';

const engine = await Engine.create();
const rng = new Rng(3);

// 1. Compute and backpropagate: f(x, w) = Σ relu(x) · w, so df/dx = w where x > 0 (else 0) and df/dw = relu(x).
const xs = Array.from({ length: 12 }, () => rng.normal());
const ws = Array.from({ length: 12 }, () => rng.normal());
const x = engine.tensor(xs, [3, 4], { requiresGrad: true });
const w = engine.tensor(ws, [3, 4], { requiresGrad: true });
const f = ops.sum(ops.mul(ops.relu(x), w));
engine.backward(f);
const fRef = xs.reduce((s, v, i) => s + Math.max(v, 0) * ws[i], 0);
assert.ok(Math.abs((await f.item()) - fRef) < 1e-5, 'forward');
const gx = await x.grad.toArray();
const gw = await w.grad.toArray();
xs.forEach((v, i) => {
  assert.ok(Math.abs(gx[i] - (v > 0 ? ws[i] : 0)) < 1e-6, `dx[${i}]`);
  assert.ok(Math.abs(gw[i] - Math.max(v, 0)) < 1e-6, `dw[${i}]`);
});

// 2. A kernel defined outside the package: out[i] = a · x[i]² + b.
const affineSquare = defineKernel({
  name: 'consumer_affine_square',
  source: `
#include "grid"
@compute @workgroup_size(WG_X)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
  out[i] = u.a * x[i] * x[i] + u.b;
}`,
  workgroupSize: 64,
  uniforms: { n: 'u32', a: 'f32', b: 'f32', row_width: 'u32' },
  inputs: { x: 'f32' },
  outputs: { out: 'f32' },
});
const n = 1000;
const vs = Array.from({ length: n }, () => rng.normal());
const input = engine.tensor(vs);
const out = engine.empty([n]);
const g = affineSquare.grid(n);
affineSquare.launch({ inputs: [input], outputs: [out], uniforms: { n, a: 1.5, b: -2, row_width: g.rowWidth }, workgroups: g.workgroups });
const got = await out.toArray();
vs.forEach((v, i) => assert.ok(Math.abs(got[i] - (1.5 * v * v - 2)) < 1e-5 * (1 + Math.abs(got[i])), `kernel out[${i}]`));
assert.throws(() => affineSquare.launch({ inputs: [input], outputs: [out], uniforms: { n, a: 1, b: 0 }, workgroups: [1] }), /consumer_affine_square.*row_width/);

// 3. A ResNet HVP step with a custom criterion: the pair of views whose crops differ most in area.
const config = validateConfig({
  ...DEFAULTS,
  method: 'simsiam', arch: 'resnet18', widths: [4, 4, 8, 8], smallImage: true,
  size: 12, batchSize: 4, views: 3, select: 'hardest', dim: 16, predDim: 8,
});
const method = createMethod({ engine, config, channels: 3, stepsPerEpoch: 1, totalSteps: 1, rng: new Rng(0) });
// One Engine and Module class behind every entry: the model from `hvp-webgpu/hvp` is a ResNet of `hvp-webgpu/models`.
assert.ok(method.backbone.module instanceof ResNet, 'the method trains a ResNet');
const images = Array.from({ length: config.batchSize }, (_, i) => ({
  pixels: Uint8Array.from({ length: 3 * 20 * 20 }, () => rng.int(256)), height: 20, width: 20, label: i,
}));
const batch = packBatch(images, images.map((_, i) => i));
const area = (v) => v.crop.h * v.crop.w;
const areaGap = ({ engine: e, rows, params, batchSize }) => {
  const s = [];
  for (let b = 0; b < batchSize; b++) for (const [p, q] of rows) s.push(Math.abs(area(params[0][p * batchSize + b]) - area(params[0][q * batchSize + b])));
  return e.tensor(s, [batchSize, rows.length]);
};
const step = await engine.scopeAsync(async () => {
  const r = await hvpStep({ engine, method, config, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], scorer: areaGap }, batch, { step: 0, epoch: 0, totalSteps: 1 });
  return { loss: await r.loss.item(), choice: [...(await r.choice.toArray())], rows: r.rows, params: r.params[0] };
});
assert.ok(Number.isFinite(step.loss), 'finite loss');
// A criterion of the wrong shape is refused, naming the shape it must have.
await assert.rejects(
  engine.scopeAsync(() => hvpStep({ engine, method, config, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], scorer: ({ engine: e }) => e.zeros([2]) }, batch, { step: 1, epoch: 0, totalSteps: 2 })),
  /the scorer returned f32 \[2\], expected f32 \[4, 3\]/,
);
const B = config.batchSize;
step.choice.forEach((c, b) => {
  const gaps = step.rows.map(([p, q]) => Math.abs(area(step.params[p * B + b]) - area(step.params[q * B + b])));
  assert.equal(gaps[c], Math.max(...gaps), `sample ${b} trained on the pair of largest area gap`);
});

// 4. Save the trained state and load it into a differently initialised model: every tensor comes back bit for bit.
const dir = mkdtempSync(join(tmpdir(), 'consumer-'));
const path = join(dir, 'checkpoint.safetensors');
await saveCheckpoint(path, { model: method.model, optimizer: method.optimizer, meta: { arch: config.arch, method: config.method, epoch: 1, step: 1, config } });
const other = createMethod({ engine, config, channels: 3, stepsPerEpoch: 1, totalSteps: 1, rng: new Rng(99) });
const loaded = await loadCheckpoint(path, { model: other.model, optimizer: other.optimizer });
assert.equal(loaded.meta.step, 1);
const before = other.model.stateDict();
let tensors = 0;
for (const [name, t] of Object.entries(method.model.stateDict())) {
  assert.deepEqual(await before[name].toArray(), await t.toArray(), `checkpoint tensor ${name}`);
  tensors++;
}
console.log(JSON.stringify({ ok: true, loss: step.loss, choice: step.choice, checkpointTensors: tensors }));
engine.destroy();
