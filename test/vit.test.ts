// ViTs against a DINO-style PyTorch ViT-tiny/16 (fixtures from scripts/fixtures/vit_fixture.py,
// float64): formula weights loaded by DINO's names; all tokens and gradients of parameters and input
// at 32 px (the stored 2×2 grid), at 48 and 16 px (positional embedding interpolated up and down, as
// for DINO's crops) and with an iBOT patch mask. Then what needs no PyTorch: shapes and gradient flow
// of ViT-tiny/small/base, masks, drop-path, forwardFeatures' early exit, the no-gradient forward.
// Tolerance (expectMatches): relative 1e-4 with an absolute floor of 1e-5 × the tensor's largest |value|.

import { describe, expect, it } from 'vitest';
import { nn, ops, Rng, type Engine, type Tensor } from '../engine/index.js';
import { vitBase, vitSmall, vitTiny, type VisionTransformer } from '../models/index.js';
import { engine, gpuVariantEngine } from './helpers.js';
import { expectMatches, hashUniform, readFixture } from './ssl-fixtures.js';
import { loadVitFormula as loadFormula, numel, type VitFixture, type VitReduced as Reduced } from './vit-fixture.js';

/** Compare a full gradient with the fixture's whole values, or with its rows and row/column sums. */
async function expectReduced(t: Tensor, r: Reduced, label: string, cols?: number): Promise<void> {
  expect([...t.shape], `${label} shape`).toEqual(r.shape);
  if (r.values) return expectMatches(t, r.values, label);
  const g = Float64Array.from(await t.toArray());
  const c = cols ?? numel(r.shape.slice(1));
  const nRows = g.length / c;
  const rowVals = r.rows!.flatMap((row) => [...g.subarray(row * c, (row + 1) * c)]);
  const rowSums = [...Array(nRows).keys()].map((i) => g.subarray(i * c, (i + 1) * c).reduce((a, b) => a + b, 0));
  const colSums = [...Array(c).keys()].map((j) => {
    let s = 0;
    for (let i = 0; i < nRows; i++) s += g[i * c + j];
    return s;
  });
  const scale = Math.max(...r.rowValues!.map(Math.abs));
  await expectMatches(rowVals, r.rowValues!, `${label} rows`);
  // A sum is judged against the scale of its terms, not its own (it may cancel to near zero).
  await expectMatches(rowSums, r.rowSums!, `${label} row sums`, scale);
  await expectMatches(colSums, r.colSums!, `${label} column sums`, scale);
}

// With the engine's default kernels and with the GPU variants forced, so lavapipe covers the kernels a
// GPU would run through the whole network.
for (const variant of ['default', 'gpu'] as const) {
  describe(`ViT-tiny/16 against PyTorch (DINO layout, iBOT mask; ${variant} kernels)`, async () => {
    const e = await (variant === 'gpu' ? gpuVariantEngine() : engine());
    const first = readFixture<VitFixture>('vit_tiny_32.json');
    const model = vitTiny(e, { patchSize: 16, imgSize: first.imgSize, maskedImModeling: true }, new Rng(0));

    it("has DINO's parameter names and shapes, in PyTorch's order", () => {
      expect(model.namedParameters().map(([n, t]) => [n, [...t.shape]])).toEqual(first.state);
      loadFormula(e, model, first.state);
    });

    for (const file of ['vit_tiny_32.json', 'vit_tiny_32_mask.json', 'vit_tiny_48.json', 'vit_tiny_16.json']) {
      it(`${file}: tokens, CLS and gradients`, async () => {
        const fx = readFixture<VitFixture>(file);
        for (const c of fx.cases) {
          model.zeroGrad();
          await e.scopeAsync(async () => {
            const shape = [fx.batch, 3, c.size, c.size];
            const x = e.tensor(Float32Array.from(hashUniform(1000, numel(shape))), shape, { requiresGrad: true });
            const tokens = model.forwardTokens(x, c.mask ? { mask: c.mask.map((v) => v !== 0) } : {});
            expect([...tokens.shape]).toEqual(c.tokenShape);
            await expectMatches(tokens, c.tokens, `${file} tokens`);
            await expectMatches(tokens.slice(1, 0, 1), c.cls, `${file} CLS`);
            const w = e.tensor(Float32Array.from(hashUniform(2000, tokens.size)), tokens.shape);
            ops.sum(ops.mul(tokens, w)).backward();
            const params = Object.fromEntries(model.namedParameters());
            for (const [name, r] of Object.entries(c.grads)) {
              if (name === 'input') await expectReduced(x.grad!, r, `${file} input grad`, c.size);
              else await expectReduced(params[name].grad!, r, `${file} grad of ${name}`);
            }
            // masked_embed takes part (and gets a gradient) only when a mask is given, as in PyTorch.
            expect(params.masked_embed.grad === null).toBe(!c.grads.masked_embed);
            x.grad!.dispose();
          });
        }
      });
    }

    it('forward (CLS after the final norm) agrees with the fixture, with and without a tape', async () => {
      const fx = readFixture<VitFixture>('vit_tiny_32.json');
      const shape = [fx.batch, 3, fx.imgSize, fx.imgSize];
      const x = e.tensor(Float32Array.from(hashUniform(1000, numel(shape))), shape);
      await expectMatches(await e.scopeAsync(async () => model.forward(x).toArray()), fx.cases[0].cls, 'forward CLS');
      await expectMatches(await e.scopeAsync(async () => e.noGrad(() => model.forward(x)).toArray()), fx.cases[0].cls, 'no-grad CLS');
      x.dispose();
    });
  });
}

/** Σ out·w for a random w: every output element gets a gradient. */
function randomLoss(e: Engine, out: Tensor, rng: Rng): Tensor {
  return ops.sum(ops.mul(out, e.randn(out.shape, rng)));
}

async function expectEveryGradFinite(model: VisionTransformer, skip: string[] = []): Promise<void> {
  for (const [name, p] of model.namedParameters()) {
    if (skip.includes(name)) {
      expect(p.grad, `${name} should get no gradient`).toBeNull();
      continue;
    }
    expect(p.grad, `${name} has no gradient`).not.toBeNull();
    const g = await p.grad!.toArray();
    expect(g.every(Number.isFinite), `${name} gradient is finite`).toBe(true);
    expect(g.some((v) => v !== 0), `${name} gradient is not all zero`).toBe(true);
  }
}

describe('ViT shapes, gradient flow and options', async () => {
  const e = await engine();
  const rng = new Rng(3);

  const archs = [
    { name: 'vit_tiny/8 (with a head)', build: vitTiny, d: 192, opts: { patchSize: 8 as const, imgSize: 16, numClasses: 5 }, input: [2, 3, 16, 16] },
    { name: 'vit_small/4', build: vitSmall, d: 384, opts: { patchSize: 4 as const, imgSize: 8 }, input: [1, 3, 8, 8] },
    { name: 'vit_base/16', build: vitBase, d: 768, opts: { patchSize: 16 as const, imgSize: 32 }, input: [1, 3, 32, 32] },
  ];
  for (const a of archs) {
    it(`${a.name}: shapes, parameter count, every parameter gets a finite gradient`, async () => {
      const model = a.build(e, a.opts, rng);
      const [b, , h, w] = a.input;
      const p = (h / a.opts.patchSize) * (w / a.opts.patchSize);
      const mlp = 4 * a.d;
      const perBlock = 4 * a.d + (3 * a.d * a.d + 3 * a.d) + (a.d * a.d + a.d) + (mlp * a.d + mlp) + (a.d * mlp + a.d);
      const classes = a.opts.numClasses ?? 0;
      const patchEmbed = a.d * 3 * a.opts.patchSize ** 2 + a.d;
      const head = classes ? classes * a.d + classes : 0;
      // cls_token, pos_embed, patch_embed, 12 blocks, norm, head
      const expected = a.d + (p + 1) * a.d + patchEmbed + 12 * perBlock + 2 * a.d + head;
      expect(model.parameters().reduce((s, t) => s + t.size, 0)).toBe(expected);
      await e.scopeAsync(async () => {
        const x = e.randn(a.input, rng);
        const tokens = model.forwardTokens(x);
        expect([...tokens.shape]).toEqual([b, 1 + p, a.d]);
        const out = model.forward(x);
        expect([...out.shape]).toEqual([b, classes || a.d]);
        randomLoss(e, out, rng).backward();
      });
      await expectEveryGradFinite(model);
      for (const t of model.parameters()) t.grad?.dispose();
      for (const t of model.parameters()) t.dispose();
    });
  }

  it("initialises as DINO: trunc_normal(0.02) for Linear weights, pos_embed, cls_token; zero biases; LayerNorm 1, 0", async () => {
    const model = vitTiny(e, { patchSize: 16, imgSize: 32, numClasses: 3 }, rng);
    const p = Object.fromEntries(model.namedParameters());
    const std = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0) / v.length);
    for (const name of ['blocks.0.attn.qkv.weight', 'blocks.5.mlp.fc1.weight', 'blocks.11.attn.proj.weight', 'head.weight']) {
      const w = await p[name].toArray();
      expect(Math.abs(std(w) / 0.02 - 1), `${name} std`).toBeLessThan(w.length > 1000 ? 0.05 : 0.3);
    }
    const pe = [...(await p.pos_embed.toArray()), ...(await p.cls_token.toArray())];
    expect(Math.abs(std(pe) / 0.02 - 1)).toBeLessThan(0.1);
    for (const name of ['blocks.3.attn.qkv.bias', 'blocks.3.mlp.fc2.bias', 'head.bias', 'norm.bias', 'blocks.7.norm1.bias']) {
      expect([...(await p[name].toArray())].every((v) => v === 0), `${name} is zero`).toBe(true);
    }
    expect([...(await p['blocks.7.norm2.weight'].toArray())].every((v) => v === 1)).toBe(true);
    // The patch embedding keeps nn.Conv2d's default: U(±1/√fan_in), fan_in = 3·16·16.
    const pw = Float64Array.from(await p['patch_embed.proj.weight'].toArray());
    const bound = 1 / Math.sqrt(3 * 16 * 16);
    expect(pw.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeLessThanOrEqual(bound);
    expect(Math.abs(std(pw) / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.05);
    for (const t of model.parameters()) t.dispose();
  });

  it('patch mask: booleans, numbers and an f32 [B, gh, gw] tensor agree; masked_embed gets a gradient only with a mask', async () => {
    const model = vitTiny(e, { patchSize: 4, imgSize: 8, maskedImModeling: true }, rng);
    const x = e.randn([2, 3, 8, 8], rng);
    const mask = [true, false, false, true, false, false, true, true];
    const run = (m: Parameters<VisionTransformer['forwardTokens']>[1]) => e.scopeAsync(async () => model.forwardTokens(x, m).toArray());
    const masked = await run({ mask });
    await expectMatches(await run({ mask: mask.map(Number) }), masked, 'numeric mask');
    const mt = e.tensor(mask.map(Number), [2, 2, 2]);
    await expectMatches(await run({ mask: mt }), masked, 'tensor mask');
    const plain = await run({});
    expect(Math.max(...plain.map((v, i) => Math.abs(v - masked[i])))).toBeGreaterThan(1e-3);
    // An all-false mask changes nothing.
    await expectMatches(await run({ mask: mask.map(() => false) }), plain, 'empty mask');

    await e.scopeAsync(async () => randomLoss(e, model.forwardTokens(x), rng).backward());
    await expectEveryGradFinite(model, ['masked_embed']);
    model.zeroGrad();
    await e.scopeAsync(async () => randomLoss(e, model.forwardTokens(x, { mask }), rng).backward());
    await expectEveryGradFinite(model);

    expect(() => model.forwardTokens(x, { mask: [true, false] })).toThrow(/mask of 2 values, expected \[2, 4\]/);
    const noMim = vitTiny(e, { patchSize: 4, imgSize: 8 }, rng);
    expect(noMim.namedParameters().some(([n]) => n === 'masked_embed')).toBe(false);
    expect(() => noMim.forwardTokens(x, { mask })).toThrow(/maskedImModeling: true/);
    model.zeroGrad();
    for (const t of [x, mt, ...model.parameters(), ...noMim.parameters()]) t.dispose();
  });

  it('drop-path: linear per-block rates, deterministic for a seed, inactive in eval mode', async () => {
    const model = vitTiny(e, { patchSize: 8, imgSize: 16, dropPathRate: 0.5 }, rng);
    expect(model.blocks.map((b) => b.dropPathRate)).toEqual([...Array(12).keys()].map((i) => (0.5 * i) / 11));
    const plain = vitTiny(e, { patchSize: 8, imgSize: 16 }, rng);
    plain.loadStateDict(model.stateDict());
    const x = e.randn([6, 3, 16, 16], rng);
    const out = (m: VisionTransformer, seed?: number) =>
      e.scopeAsync(async () => m.forward(x, seed === undefined ? {} : { rng: new Rng(seed) }).toArray());
    const a = await out(model, 1);
    expect([...(await out(model, 1))]).toEqual([...a]);
    const b = await out(model, 2);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-3);
    const reference = await out(plain); // rate 0: nothing dropped, no rng needed in training mode
    expect(Math.max(...a.map((v, i) => Math.abs(v - reference[i])))).toBeGreaterThan(1e-3);
    expect(() => model.forward(x)).toThrow(/needs an rng/);
    model.eval();
    await expectMatches(await out(model), reference, 'eval mode = no drop-path');
    for (const t of [x, ...model.parameters(), ...plain.parameters()]) t.dispose();
  });

  it('forwardFeatures: CLS of block upTo, later blocks not run; the last one + norm is forward', async () => {
    const model = vitTiny(e, { patchSize: 8, imgSize: 16 }, rng);
    const x = e.randn([2, 3, 16, 16], rng);
    const feats = (upTo: number) => e.scopeAsync(async () => model.forwardFeatures(x, { upTo }).toArray());
    const counters = e.backend.counters;
    const start = counters.dispatches;
    const early = await feats(1);
    const earlyDispatches = counters.dispatches - start;
    const mid = counters.dispatches;
    await feats(11);
    expect(earlyDispatches * 3).toBeLessThan(counters.dispatches - mid);
    // Perturbing block 2 leaves block 1's output alone.
    const fc2 = model.blocks[2].mlp.fc2.bias!;
    e.scope(() => ops.copyInto(fc2, e.full(fc2.shape, 3)));
    await expectMatches(await feats(1), early, 'upTo 1 after changing block 2');
    const last = await e.scopeAsync(async () => {
      const f = model.forwardFeatures(x);
      return model.norm.forward(f).toArray();
    });
    await expectMatches(last, await e.scopeAsync(async () => model.forward(x).toArray()), 'norm(features(11)) = forward');
    expect(() => model.forwardFeatures(x, { upTo: 12 })).toThrow(/upTo must be a block index in \[0, 11\], got 12/);
    for (const t of [x, ...model.parameters()]) t.dispose();
  });

  it('a forward without a tape frees its activations as it goes', async () => {
    const model = vitTiny(e, { patchSize: 4, imgSize: 16 }, rng);
    const x = e.randn([4, 3, 16, 16], rng);
    const pool = e.backend.pool;
    const peakOf = (fn: () => Tensor) => {
      const before = pool.snapshot().bytesInUse;
      pool.resetPeak();
      const out = fn();
      const { bytesInUse, peakBytesInUse } = pool.snapshot();
      return { out, kept: bytesInUse - before, peak: peakBytesInUse - before };
    };
    const free = peakOf(() => e.noGrad(() => model.forward(x)));
    expect(free.kept).toBeLessThanOrEqual(4 * 192 * 4 + 256); // only the [4, 192] output remains
    free.out.dispose();
    const taped = e.scope(() => peakOf(() => model.forward(x)).peak);
    // About one block's activations instead of twelve.
    expect(free.peak * 4).toBeLessThan(taped);
    for (const t of [x, ...model.parameters()]) t.dispose();
  });

  it('rejects bad options and inputs, naming the model', () => {
    expect(() => vitTiny(e, { patchSize: 5 as 4 }, rng)).toThrow(/vit_tiny\/5: patchSize must be 16, 8 or 4/);
    expect(() => vitTiny(e, { patchSize: 16, imgSize: 40 }, rng)).toThrow(/imgSize 40 must be a positive multiple of patchSize 16/);
    const model = vitTiny(e, { patchSize: 16, imgSize: 32 }, rng);
    const x = e.randn([1, 1, 32, 32], rng);
    expect(() => model.forward(x)).toThrow(/vit_tiny\/16: expects input \[B, 3, H, W\] with H, W ≥ 16, got Tensor\(\[1, 1, 32, 32\]\)/);
    for (const t of [x, ...model.parameters()]) t.dispose();
  });
});

describe('nn.LayerNorm', async () => {
  const e = await engine();
  it("has PyTorch's names and init, and normalises the last axis with its eps", async () => {
    const ln = new nn.LayerNorm(e, 5, { eps: 1e-6 });
    expect(ln.namedParameters().map(([n, t]) => [n, [...t.shape]])).toEqual([['weight', [5]], ['bias', [5]]]);
    expect([...(await ln.weight!.toArray())]).toEqual([1, 1, 1, 1, 1]);
    expect([...(await ln.bias!.toArray())]).toEqual([0, 0, 0, 0, 0]);
    const x = [1, 2, 3, 4, 10];
    const m = 4;
    const rstd = 1 / Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / 5 + 1e-6);
    const got = await e.scopeAsync(async () => ln.forward(e.tensor(x, [1, 5])).toArray());
    await expectMatches(got, x.map((v) => (v - m) * rstd), 'layer norm');
    expect(new nn.LayerNorm(e, 3, { elementwiseAffine: false }).parameters()).toEqual([]);
    expect(() => new nn.LayerNorm(e, 0)).toThrow(/normalizedShape must be a positive integer, got 0/);
  });
});
