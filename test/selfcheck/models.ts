// The self-check's model rows: ResNet-18 (small-image stem) and ViT-tiny/16 forward and backward
// against the committed PyTorch fixtures (float64), with the tolerances of test/resnet.test.ts and
// test/vit.test.ts: relative 1e-4 with an absolute floor of 1e-5 × the tensor's largest |value|
// (3e-5 for ResNet gradients, whose 20 training-mode BNs PyTorch's own f32 barely meets at 1e-5).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ops, Rng, type Engine, type Tensor } from '../../engine/index.js';
import { resnet18, vitTiny } from '../../models/index.js';
import { hashUniform } from '../fixture-formulas.js';
import { loadResNetFormula, type ResNetFixture, type ResNetReduced } from '../resnet-fixture.js';
import { loadVitFormula, numel, type VitFixture, type VitReduced } from '../vit-fixture.js';
import { compare, worse, type Compared } from './measure.js';
import type { Check } from './kernels.js';

/** As expectMatches: rtol 1e-4, atol 1e-5 × max(scale, largest |expected|); a ratio ≤ 1 passes. */
function matches(got: ArrayLike<number>, expected: ArrayLike<number>, scale = 0): Compared {
  let s = scale;
  for (let i = 0; i < expected.length; i++) s = Math.max(s, Math.abs(expected[i]));
  return compare(got, expected, { rtol: 1e-4, atol: 1e-5 * s });
}

function sum(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
}
const read = <T>(dir: string, name: string): T => JSON.parse(readFileSync(join(dir, name), 'utf8')) as T;

/** A ResNet gradient against its fixture entry: whole, or slices plus the sum of squares (the test's GRAD_FLOOR of 3). */
function resnetGrad(g: Float32Array, r: ResNetReduced): Compared {
  if (r.values) return matches(g, r.values, 3 * Math.max(...r.values.map(Math.abs)));
  const scale = 3 * Math.max(...r.slices!.flatMap(([, v]) => v.map(Math.abs)));
  let c: Compared = { maxAbs: 0, worst: 0 };
  for (const [start, v] of r.slices!) c = worse(c, matches(g.subarray(start, start + v.length), v, scale));
  let sumsq = 0;
  for (const v of g) sumsq += v * v;
  return worse(c, matches([sumsq], [r.sumsq!]));
}

/** A ViT gradient: whole values, or chosen rows and every row and column sum. */
function vitGrad(g: Float32Array, r: VitReduced, cols?: number): Compared {
  if (r.values) return matches(g, r.values);
  const c = cols ?? numel(r.shape.slice(1));
  const rows = g.length / c;
  const rowVals = r.rows!.flatMap((row) => [...g.subarray(row * c, (row + 1) * c)]);
  const rowSums = [...Array(rows).keys()].map((i) => sum(g.subarray(i * c, (i + 1) * c)));
  const colSums = [...Array(c).keys()].map((j) => {
    let s = 0;
    for (let i = 0; i < rows; i++) s += g[i * c + j];
    return s;
  });
  const scale = Math.max(...r.rowValues!.map(Math.abs));
  return worse(worse(matches(rowVals, r.rowValues!), matches(rowSums, r.rowSums!, scale)), matches(colSums, r.colSums!, scale));
}

const FIXTURE_TOL = { rtol: 1e-4, atol: 1e-5 };

async function resnetRows(e: Engine, dir: string): Promise<{ eval: Compared; train: Compared; grads: Compared }> {
  const fx = read<ResNetFixture>(dir, 'resnet18_small.json');
  const model = resnet18(e, { numClasses: fx.numClasses, smallImage: fx.smallImage }, new Rng(0));
  try {
    loadResNetFormula(e, model, fx);
    const input = Float32Array.from(hashUniform(1000, numel(fx.inputShape)));
    model.eval();
    const evalOut = await e.scopeAsync(async () => e.noGrad(() => model.forward(e.tensor(input, fx.inputShape))).toArray());
    model.train();
    return await e.scopeAsync(async () => {
      const x = e.tensor(input, fx.inputShape, { requiresGrad: true });
      const out = model.forward(x);
      const train = matches(await out.toArray(), fx.trainOut);
      out.backward(e.tensor(Float32Array.from(hashUniform(1001, out.size)), [...out.shape]));
      const params = new Map(model.namedParameters());
      let grads = resnetGrad((await x.grad!.toArray()) as Float32Array, fx.inputGrad);
      for (const [name, r] of Object.entries(fx.grads)) grads = worse(grads, resnetGrad((await params.get(name)!.grad!.toArray()) as Float32Array, r));
      return { eval: matches(evalOut, fx.evalOut), train, grads };
    });
  } finally {
    for (const p of model.parameters()) p.dispose();
    for (const [, b] of model.namedBuffers()) b.dispose();
  }
}

async function vitRows(e: Engine, dir: string): Promise<{ tokens: Compared; grads: Compared }> {
  const fx = read<VitFixture>(dir, 'vit_tiny_32.json');
  const model = vitTiny(e, { patchSize: 16, imgSize: fx.imgSize, maskedImModeling: true }, new Rng(0));
  try {
    loadVitFormula(e, model, fx.state);
    const c = fx.cases[0];
    return await e.scopeAsync(async () => {
      const shape = [fx.batch, 3, c.size, c.size];
      const x = e.tensor(Float32Array.from(hashUniform(1000, numel(shape))), shape, { requiresGrad: true });
      const tokens = model.forwardTokens(x, c.mask ? { mask: c.mask.map((v) => v !== 0) } : {});
      const got = matches(await tokens.toArray(), c.tokens);
      ops.sum(ops.mul(tokens, e.tensor(Float32Array.from(hashUniform(2000, tokens.size)), tokens.shape))).backward();
      const params = Object.fromEntries(model.namedParameters());
      let grads: Compared = { maxAbs: 0, worst: 0 };
      for (const [name, r] of Object.entries(c.grads)) {
        const t: Tensor | undefined = name === 'input' ? x : params[name];
        // The input's gradient is reduced over rows of one image row (c.size values), as the test reads it.
        grads = worse(grads, t?.grad ? vitGrad((await t.grad.toArray()) as Float32Array, r, name === 'input' ? c.size : undefined) : { maxAbs: Infinity, worst: Infinity, problem: `no gradient for ${name}` });
      }
      return { tokens: got, grads };
    });
  } finally {
    for (const p of model.parameters()) p.dispose();
  }
}

/** The model rows, reading the fixtures from `dir` (test/fixtures of the checkout). */
export function modelChecks(dir: string): Check[] {
  let resnet: Promise<Awaited<ReturnType<typeof resnetRows>>> | null = null;
  let vit: Promise<Awaited<ReturnType<typeof vitRows>>> | null = null;
  const r = (e: Engine) => (resnet ??= resnetRows(e, dir));
  const v = (e: Engine) => (vit ??= vitRows(e, dir));
  return [
    { name: 'resnet18 small-image eval forward (PyTorch fixture)', tol: FIXTURE_TOL, run: async (e) => (await r(e)).eval },
    { name: 'resnet18 small-image train forward (PyTorch fixture)', tol: FIXTURE_TOL, run: async (e) => (await r(e)).train },
    { name: 'resnet18 small-image backward (PyTorch fixture)', tol: FIXTURE_TOL, run: async (e) => (await r(e)).grads },
    { name: 'vit_tiny/16 tokens at 32 px (PyTorch fixture)', tol: FIXTURE_TOL, run: async (e) => (await v(e)).tokens },
    { name: 'vit_tiny/16 backward at 32 px (PyTorch fixture)', tol: FIXTURE_TOL, run: async (e) => (await v(e)).grads },
  ];
}
