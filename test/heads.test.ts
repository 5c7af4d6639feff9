// The SSL heads against PyTorch (fixtures from scripts/fixtures/losses_fixture.py): parameter and
// buffer names, a training-mode forward and backward with formula weights (outputs, every parameter's
// gradient, the input's gradient, running statistics) and an eval-mode forward; plus DINO's frozen
// gain, last-layer gradient cancelling and iBOT's token split.

import { describe, expect, it } from 'vitest';
import { Rng, nn, type Engine, type Tensor } from '../engine/index.js';
import { add, copyInto, mul, sum } from '../engine/ops/index.js';
import { DinoHead, IbotHead, SimClrProjector, SimSiamPredictor, SimSiamProjector } from '../models/index.js';
import { engine, gpuVariantEngine } from './helpers.js';
import { expectMatches, formula, formulaTensor, readFixture } from './ssl-fixtures.js';

interface HeadCase {
  params: [string, number[], boolean][];
  stateKeys: string[];
  input: number[];
  out: number[][];
  outShape: number[][];
  grads: Record<string, number[]>;
  grad_input: number[];
  buffers: Record<string, number[]>;
  evalOut?: number[][];
}

const fx = readFixture<Record<string, HeadCase>>('losses_heads.json');
const INPUT_K: Record<string, number> = { simsiamProjector: 80, simsiamPredictor: 81, simclrProjector: 82, dinoHead: 83, dinoHeadBn: 84, ibotHead: 85, ibotHeadBn: 86 };

type Head = nn.Module & { forward(x: Tensor): Tensor };

/** The generator's fill_formula: parameter k in named order, scaled like its init. */
function fillFormula(e: Engine, m: nn.Module): void {
  e.scope(() =>
    m.namedParameters().forEach(([name, p], k) => {
      const [scale, offset] =
        name.endsWith('weight_g') || (p.ndim === 1 && name.endsWith('weight')) ? [0.2, 1] : p.ndim === 1 ? [0.1, 0] : [1 / Math.sqrt(p.shape[1]), 0];
      copyInto(p, e.tensor(formula([...p.shape], k, scale, offset), [...p.shape]));
    }),
  );
}

function outputs(m: Head, x: Tensor): Tensor[] {
  if (m instanceof IbotHead) {
    const o = m.forwardTokens(x);
    return [o.cls, o.patch];
  }
  return [m.forward(x)];
}

async function checkCase(e: Engine, name: string, m: Head): Promise<void> {
  const c = fx[name];
  expect(m.namedParameters().map(([n, p]) => [n, [...p.shape], p.requiresGrad])).toEqual(c.params);
  expect(Object.keys(m.stateDict()).sort()).toEqual([...c.stateKeys].sort());
  fillFormula(e, m);
  await e.scopeAsync(async () => {
    const x = formulaTensor(e, c.input, INPUT_K[name], 1, { requiresGrad: true });
    m.train();
    const outs = outputs(m, x);
    let loss: Tensor | null = null;
    for (const [i, o] of outs.entries()) {
      expect([...o.shape]).toEqual(c.outShape[i]);
      await expectMatches(o, c.out[i], `${name} output ${i}`);
      const term = sum(mul(o, formulaTensor(e, [...o.shape], 90 + i)));
      loss = loss ? add(loss, term) : term;
    }
    loss!.backward();
    // A Linear bias right before a training-mode BN has an exactly zero gradient (the BN removes any
    // shift): it is judged against the scale of the case's other gradients.
    const gradScale = Math.max(...Object.values(c.grads).flat().map(Math.abs));
    for (const [n, p] of m.namedParameters()) {
      const own = c.grads[n] ? Math.max(...c.grads[n].map(Math.abs)) : 0;
      if (c.grads[n]) await expectMatches(p.grad!, c.grads[n], `${name} grad ${n}`, own < 1e-9 * gradScale ? gradScale : 0);
      else expect(p.grad, `${name}: frozen ${n} has no gradient`).toBeNull();
    }
    await expectMatches(x.grad!, c.grad_input, `${name} grad input`);
    const buffers = Object.fromEntries(m.namedBuffers());
    for (const [n, want] of Object.entries(c.buffers)) await expectMatches(buffers[n], want, `${name} ${n}`);
    for (const [n, t] of Object.entries(buffers)) if (n.endsWith('num_batches_tracked')) expect(await t.item()).toBe(1);
    if (c.evalOut) {
      m.eval();
      const evalOuts = e.noGrad(() => outputs(m, x));
      for (const [i, o] of evalOuts.entries()) await expectMatches(o, c.evalOut[i], `${name} eval output ${i}`);
    }
    m.zeroGrad();
    x.grad?.dispose();
  });
}

// Run with the engine's default kernels and with the GPU variants forced, so lavapipe covers the
// kernels a GPU would run.
for (const variant of ['default', 'gpu'] as const) {
  const variantEngine = variant === 'gpu' ? gpuVariantEngine : engine;

  describe(`heads match PyTorch (formula weights, forward, backward, running statistics; ${variant} kernels)`, () => {
    it('SimSiam projector (simsiam encoder.fc layout, frozen 6.bias)', async () => {
      const e = await variantEngine();
      await checkCase(e, 'simsiamProjector', new SimSiamProjector(e, 16, new Rng(1), { dim: 12 }));
    });

    it('SimSiam predictor', async () => {
      const e = await variantEngine();
      await checkCase(e, 'simsiamPredictor', new SimSiamPredictor(e, new Rng(2), { dim: 12, predDim: 6 }));
    });

    it('SimCLR projector', async () => {
      const e = await variantEngine();
      await checkCase(e, 'simclrProjector', new SimClrProjector(e, 16, new Rng(3), { hiddenDim: 20, outDim: 8 }));
    });

    it('DINO head with a trainable gain (normLastLayer: false)', async () => {
      const e = await variantEngine();
      await checkCase(e, 'dinoHead', new DinoHead(e, 16, 24, new Rng(4), { hiddenDim: 32, bottleneckDim: 8, normLastLayer: false }));
    });

    it('DINO head with BN in the MLP and a frozen gain', async () => {
      const e = await variantEngine();
      await checkCase(e, 'dinoHeadBn', new DinoHead(e, 16, 24, new Rng(5), { hiddenDim: 32, bottleneckDim: 8, useBn: true }));
    });

    it('iBOT head, shared last layer on [CLS] and patch tokens', async () => {
      const e = await variantEngine();
      await checkCase(e, 'ibotHead', new IbotHead(e, 16, 24, new Rng(6), { hiddenDim: 32, bottleneckDim: 8, normLastLayer: false }));
    });

    it('iBOT head with BN in the MLP (statistics over images and tokens)', async () => {
      const e = await variantEngine();
      await checkCase(e, 'ibotHeadBn', new IbotHead(e, 16, 24, new Rng(7), { hiddenDim: 32, bottleneckDim: 8, useBn: true }));
    });
  });
}

describe('head behaviour', () => {
  it('default widths follow the references', async () => {
    const e = await engine();
    const shapes = (m: nn.Module) => Object.fromEntries(m.namedParameters().map(([n, p]) => [n, [...p.shape]]));
    const proj = new SimSiamProjector(e, 64, new Rng(1));
    expect(shapes(proj)['6.weight']).toEqual([2048, 64]);
    const pred = new SimSiamPredictor(e, new Rng(1));
    expect(shapes(pred)).toMatchObject({ '0.weight': [512, 2048], '3.weight': [2048, 512] });
    const dino = new DinoHead(e, 32, 40, new Rng(1));
    expect(shapes(dino)).toMatchObject({ 'mlp.0.weight': [2048, 32], 'mlp.4.weight': [256, 2048], 'last_layer.weight_v': [40, 256] });
    for (const m of [proj, pred, dino]) for (const t of Object.values(m.stateDict())) t.dispose();
  });

  it("in selection mode (setBatchStatsOnly) the heads' BNs use batch statistics and leave the running ones alone", async () => {
    const e = await engine();
    const head = new SimClrProjector(e, 5, new Rng(12), { hiddenDim: 6, outDim: 3 });
    await e.scopeAsync(async () => {
      const x = formulaTensor(e, [4, 5], 7);
      const trained = await head.forward(x).toArray();
      const after = await head.stateDict()['1.running_mean'].toArray();
      nn.setBatchStatsOnly(head, true);
      await expectMatches(e.noGrad(() => head.forward(x)), trained, 'same output as the training forward');
      expect(await head.stateDict()['1.running_mean'].toArray()).toEqual(after);
      expect(await head.stateDict()['1.num_batches_tracked'].item()).toBe(1);
    });
  });

  it('weight-normalised rows have norm g; a frozen g stays at 1; DINO init has zero biases', async () => {
    const e = await engine();
    const head = new DinoHead(e, 6, 5, new Rng(9), { hiddenDim: 8, bottleneckDim: 4 });
    const w = await head.last_layer.weight().toArray();
    for (let r = 0; r < 5; r++) expect(Math.hypot(...w.slice(r * 4, r * 4 + 4))).toBeCloseTo(1, 5);
    expect(head.last_layer.weight_g.requiresGrad).toBe(false);
    expect(Array.from(await head.stateDict()['mlp.0.bias'].toArray())).toEqual(new Array(8).fill(0));
  });

  it('cancelLastLayerGrad drops only last_layer gradients, only during the frozen epochs', async () => {
    const e = await engine();
    const head = new DinoHead(e, 6, 5, new Rng(10), { hiddenDim: 8, bottleneckDim: 4, normLastLayer: false, freezeLastLayer: 2 });
    const step = () => e.scope(() => sum(mul(head.forward(formulaTensor(e, [3, 6], 1)), formulaTensor(e, [3, 5], 2))).backward());
    step();
    head.cancelLastLayerGrad(2);
    expect(head.last_layer.weight_v.grad).not.toBeNull();
    head.cancelLastLayerGrad(1);
    expect(head.last_layer.weight_v.grad).toBeNull();
    expect(head.last_layer.weight_g.grad).toBeNull();
    expect(head.namedParameters().filter(([n]) => n.startsWith('mlp')).every(([, p]) => p.grad !== null)).toBe(true);
    head.zeroGrad();
  });

  it('iBOT head: separate last_layer2 when not shared, and a 2-D input is a DINO forward', async () => {
    const e = await engine();
    const head = new IbotHead(e, 6, 5, new Rng(11), { hiddenDim: 8, bottleneckDim: 4, sharedHead: false, patchOutDim: 7 });
    expect(head.namedParameters().map(([n]) => n).filter((n) => n.startsWith('last_layer2'))).toEqual(['last_layer2.weight_g', 'last_layer2.weight_v']);
    await e.scopeAsync(async () => {
      const tokens = formulaTensor(e, [2, 4, 6], 3);
      const { cls, patch } = head.forwardTokens(tokens);
      expect([...cls.shape]).toEqual([2, 5]);
      expect([...patch.shape]).toEqual([2, 3, 7]);
      const direct = head.forward(tokens.slice(1, 0, 1).reshape(2, 6));
      await expectMatches(cls, await direct.toArray(), 'cls = DINO forward of the [CLS] token');
      expect(() => head.forwardTokens(formulaTensor(e, [2, 6], 3))).toThrow(/\[B, 1\+P, D\]/);
    });
  });
});
