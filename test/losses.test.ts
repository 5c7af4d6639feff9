// The four SSL losses against PyTorch (fixtures from scripts/fixtures/losses_fixture.py: loss, per-sample
// scores, input gradients, centres after the update), their backward against finite differences of
// float64 references, and iBOT's block masks (replayed against the reference algorithm, bounds, shape).

import { describe, expect, it } from 'vitest';
import { Rng, type Engine, type Tensor } from '../engine/index.js';
import { DinoLoss, IbotLoss, ntXentLoss, simsiamLoss, teacherTempSchedule, linspace } from '../hvp/losses/index.js';
import { BlockMaskingGenerator, blockMask, type RandomSource } from '../hvp/masks.js';
import { engine, gpuVariantEngine, gradcheck } from './helpers.js';
import { dinoRef, ibotRef, ntXentRef, simsiamRef } from './loss-ref.js';
import { expectMatches, formula, formulaNd, formulaTensor, readFixture } from './ssl-fixtures.js';

const fx = readFixture<Record<string, any>>('losses.json');

async function withScope(e: Engine, fn: () => Promise<void>): Promise<void> {
  await e.scopeAsync(fn);
}

// Every loss case runs twice: with the engine's default kernels and with the GPU variants forced, so
// lavapipe covers the kernels a GPU would run.
for (const variant of ['default', 'gpu'] as const) {
  const variantEngine = variant === 'gpu' ? gpuVariantEngine : engine;

  describe(`simsiamLoss (${variant} kernels)`, () => {
    const f = fx.simsiam;
    const shape = [f.B, f.D];

    it('matches SimSiam (loss, per-sample score, gradients; z gets none)', async () => {
      const e = await variantEngine();
      await withScope(e, async () => {
        const [p1, p2, z1, z2] = [0, 1, 2, 3].map((k) => formulaTensor(e, shape, k, 1, { requiresGrad: true }));
        const loss = simsiamLoss(p1, p2, z1, z2);
        await expectMatches(loss, f.loss, 'loss');
        loss.backward();
        await expectMatches(p1.grad!, f.grad_p1, 'grad p1');
        await expectMatches(p2.grad!, f.grad_p2, 'grad p2');
        expect(z1.grad).toBeNull();
        expect(z2.grad).toBeNull();
        await expectMatches(simsiamLoss(p1, p2, z1, z2, { perSample: true }), f.perSample, 'per sample');
        for (const t of [p1, p2]) t.grad!.dispose();
      });
    });

    it('backward matches finite differences (per-sample form, through p only)', async () => {
      const e = await variantEngine();
      const xs = [0, 1, 2, 3].map((k) => formulaNd([3, 5], k + 40));
      await gradcheck(e, xs, (a, b, c, d) => simsiamLoss(a, b, c, d, { perSample: true }), simsiamRef, { wrt: [0, 1] });
    });

    it('refuses mismatched shapes, naming them', async () => {
      const e = await variantEngine();
      e.scope(() => {
        const a = e.zeros([2, 3]);
        expect(() => simsiamLoss(a, a, a, e.zeros([2, 4]))).toThrow(/\[2, 3\].*\[2, 4\]/);
      });
    });
  });

  describe(`ntXentLoss (${variant} kernels)`, () => {
    const f = fx.simclr;
    const shape = [f.B, f.D];

    it('matches NT-Xent (loss, per-sample score, gradients)', async () => {
      const e = await variantEngine();
      await withScope(e, async () => {
        const zi = formulaTensor(e, shape, 10, 1, { requiresGrad: true });
        const zj = formulaTensor(e, shape, 11, 1, { requiresGrad: true });
        const loss = ntXentLoss(zi, zj, { temperature: f.temperature });
        await expectMatches(loss, f.loss, 'loss');
        loss.backward();
        await expectMatches(zi.grad!, f.grad_zi, 'grad zi');
        await expectMatches(zj.grad!, f.grad_zj, 'grad zj');
        await expectMatches(ntXentLoss(zi, zj, { temperature: f.temperature, perSample: true }), f.perSample, 'per sample');
        for (const t of [zi, zj]) t.grad!.dispose();
      });
    });

    it('backward matches finite differences', async () => {
      const e = await variantEngine();
      const xs = [formulaNd([3, 6], 50), formulaNd([3, 6], 51)];
      await gradcheck(e, xs, (a, b) => ntXentLoss(a, b, { temperature: 0.5, perSample: true }), (a, b) => ntXentRef(a, b, 0.5));
    });
  });

  describe(`DinoLoss (${variant} kernels)`, () => {
    const f = fx.dino;
    const views = f.G + f.L;
    const make = (e: Engine) =>
      new DinoLoss(e, {
        outDim: f.K, ncrops: views, warmupTeacherTemp: f.warmupTeacherTemp, teacherTemp: f.teacherTemp,
        warmupTeacherTempEpochs: f.warmupTeacherTempEpochs, epochs: f.epochs,
      });

    if (variant === 'default') it("builds DINO's teacher temperature schedule", () => {
      expect(teacherTempSchedule(f.warmupTeacherTemp, f.teacherTemp, f.warmupTeacherTempEpochs, f.epochs)).toEqual(f.schedule);
      expect(linspace(0.04, 0.07, 1)).toEqual([0.04]);
      expect(teacherTempSchedule(0.04, 0.07, 0, 3)).toEqual([0.07, 0.07, 0.07]);
      expect(fx.ibot.schedule2).toEqual(teacherTempSchedule(0.04, 0.07, 3, 8, 1));
    });

    it('matches DINOLoss (loss, per-sample score, student gradient, centre after the update)', async () => {
      const e = await variantEngine();
      const crit = make(e);
      await withScope(e, async () => {
        crit.loadStateDict({ center: formulaTensor(e, [1, f.K], 20, 0.3) });
        const student = formulaTensor(e, [views * f.B, f.K], 21, 2, { requiresGrad: true });
        const teacher = formulaTensor(e, [f.G * f.B, f.K], 22, 1, { requiresGrad: true });
        await expectMatches(crit.forward(student, teacher, f.epoch, { perSample: true }), f.perSample, 'per sample');
        await expectMatches(crit.center, Array.from(formula([1, f.K], 20, 0.3)), 'centre untouched by scoring');
        const loss = crit.forward(student, teacher, f.epoch);
        await expectMatches(crit.center, f.center, 'centre');
        await expectMatches(loss, f.loss, 'loss');
        loss.backward();
        await expectMatches(student.grad!, f.grad_student, 'grad student');
        expect(teacher.grad).toBeNull();
        student.grad!.dispose();
      });
      crit.center.dispose();
    });

    it('backward matches finite differences (per-sample form)', async () => {
      const e = await variantEngine();
      const crit = new DinoLoss(e, { outDim: 7, ncrops: 3, teacherTemp: 0.07, epochs: 1 });
      const teacher = formulaNd([2 * 2, 7], 60);
      const args = { teacher, center: new Float64Array(7), temp: 0.07, studentTemp: 0.1, views: 3, globals: 2 };
      await withScope(e, async () => {
        const t = e.tensor(Float32Array.from(teacher.data), teacher.shape);
        await gradcheck(e, [formulaNd([3 * 2, 7], 61, 0.3)], (s) => crit.forward(s, t, 0, { perSample: true }), (s) => dinoRef(s, args));
      });
      crit.center.dispose();
    });

    it('refuses inconsistent views and epochs outside the schedule', async () => {
      const e = await variantEngine();
      const crit = make(e);
      e.scope(() => {
        const s = e.zeros([views * f.B, f.K]);
        expect(() => crit.forward(e.zeros([7, f.K]), e.zeros([f.G * f.B, f.K]), 0)).toThrow(/\[7, 32\]/);
        expect(() => crit.forward(s, e.zeros([f.G * f.B, f.K]), f.epochs)).toThrow(/epoch 10/);
      });
      crit.center.dispose();
    });
  });

  describe(`IbotLoss (${variant} kernels)`, () => {
    const f = fx.ibot;
    const p = f.H * f.W;
    const make = (e: Engine) =>
      new IbotLoss(e, {
        outDim: f.K, patchOutDim: f.K2, nLocal: f.L, warmupTeacherTemp: f.warmup_teacher_temp, teacherTemp: f.teacher_temp,
        warmupTeacherPatchTemp: f.warmup_teacher_temp2, teacherPatchTemp: f.teacher_temp2,
        warmupTeacherTempEpochs: f.warmup_teacher_temp_epochs, epochs: f.nepochs, lambda1: f.lambda1, lambda2: f.lambda2,
        mimStartEpoch: f.mim_start_epoch,
      });
    /** The fixture's masks are [G, B, H, W]: view-major, as the loss wants its [G·B, P] rows. */
    const inputs = (e: Engine) => ({
      student: {
        cls: formulaTensor(e, [f.G * f.B, f.K], 32, 2, { requiresGrad: true }),
        patch: formulaTensor(e, [f.G * f.B, p, f.K2], 34, 2, { requiresGrad: true }),
      },
      local: formulaTensor(e, [f.L * f.B, f.K], 33, 2, { requiresGrad: true }),
      teacher: { cls: formulaTensor(e, [f.G * f.B, f.K], 35), patch: formulaTensor(e, [f.G * f.B, p, f.K2], 36) },
    });

    it('matches iBOTLoss (terms, per-sample score, gradients, both centres)', async () => {
      const e = await variantEngine();
      const crit = make(e);
      await withScope(e, async () => {
        crit.loadStateDict({ center: formulaTensor(e, [1, f.K], 30, 0.3), center2: formulaTensor(e, [1, 1, f.K2], 31, 0.3) });
        const x = inputs(e);
        const scores = crit.forward(x.student, x.teacher, x.local, f.masks, f.epoch, { perSample: true });
        await expectMatches(scores.loss, f.perSample, 'per sample');
        const out = crit.forward(x.student, x.teacher, x.local, e.tensor(f.masks, [f.G * f.B, p]), f.epoch);
        await expectMatches(out.cls, f.cls, 'cls term');
        await expectMatches(out.patch, f.patch, 'patch term');
        await expectMatches(out.loss, f.loss, 'loss');
        await expectMatches(crit.center, f.center, 'centre');
        await expectMatches(crit.center2, f.center2, 'patch centre');
        out.loss.backward();
        await expectMatches(x.student.cls.grad!, f.grad_student_cls, 'grad student cls');
        await expectMatches(x.local.grad!, f.grad_student_local, 'grad student local cls');
        await expectMatches(x.student.patch.grad!, f.grad_student_patch, 'grad student patch');
        for (const t of [x.student.cls, x.student.patch, x.local]) t.grad!.dispose();
      });
      crit.center.dispose();
      crit.center2.dispose();
    });

    it('backward matches finite differences (per-sample form)', async () => {
      const e = await variantEngine();
      const [b, k, k2, pp] = [2, 5, 4, 3];
      const crit = new IbotLoss(e, { outDim: k, patchOutDim: k2, nLocal: 1, teacherTemp: 0.06, teacherPatchTemp: 0.07, epochs: 1, lambda2: 0.5 });
      const teacherCls = formulaNd([2 * b, k], 70);
      const teacherPatch = formulaNd([2 * b, pp, k2], 71);
      const masks = [1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0];
      const args = {
        cls: { teacher: teacherCls, center: new Float64Array(k), temp: 0.06, studentTemp: 0.1, views: 3, globals: 2 },
        teacherPatch, center2: new Float64Array(k2), temp2: 0.07, masks, lambda1: 1, lambda2: 0.5,
      };
      await withScope(e, async () => {
        const t = { cls: e.tensor(Float32Array.from(teacherCls.data), teacherCls.shape), patch: e.tensor(Float32Array.from(teacherPatch.data), teacherPatch.shape) };
        const gpu = (cls: Tensor, patch: Tensor) => {
          const [g, l] = [cls.slice(0, 0, 2 * b), cls.slice(0, 2 * b, 3 * b)];
          return crit.forward({ cls: g, patch }, t, l, masks, 0, { perSample: true }).loss;
        };
        await gradcheck(e, [formulaNd([3 * b, k], 72, 0.3), formulaNd([2 * b, pp, k2], 73, 0.3)], gpu, (c, q) => ibotRef(c, q, args));
      });
      crit.center.dispose();
      crit.center2.dispose();
    });
  });
}

// ---------------------------------------------------------------- masks

/** The fixture's scripted stand-in for Python's random: MINSTD, uniform = x / (2³¹ - 1). */
class Minstd implements RandomSource {
  constructor(private x: number) {}
  uniform(): number {
    this.x = (48271 * this.x) % 2147483647;
    return this.x / 2147483647;
  }
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

describe('BlockMaskingGenerator', () => {
  const mf = readFixture<any>('losses_masks.json');

  it("replays iBOT's ImageFolderMask draw for draw (same stream, same ratios and masks)", () => {
    for (const c of mf.cases) {
      const gen = new BlockMaskingGenerator({ predRatio: c.predRatio, predRatioVar: c.predRatioVar, predAspectRatio: mf.aspect });
      const rng = new Minstd(c.seed);
      c.masks.forEach((want: number[], i: number) => {
        const ratio = gen.predRatio(rng);
        expect(ratio).toBeCloseTo(c.ratios[i], 12);
        expect(Array.from(blockMask(rng, c.H, c.W, ratio * c.H * c.W, gen.logAspect).mask), `case seed ${c.seed}, mask ${i}`).toEqual(want);
      });
    }
  });

  it('HVP default: half the images unmasked, the rest masked up to a ratio in [0.1, 0.5]', () => {
    const gen = new BlockMaskingGenerator();
    const rng = new Rng(3);
    const n = 400;
    let empty = 0;
    for (let i = 0; i < n; i++) {
      const ratio = gen.predRatio(rng);
      expect(ratio === 0 || (ratio >= 0.1 && ratio <= 0.5)).toBe(true);
      const count = blockMask(rng, 14, 14, ratio * 196, gen.logAspect).mask.reduce((s, v) => s + v, 0);
      expect(count).toBeLessThanOrEqual(ratio * 196);
      if (ratio === 0) empty++;
      // Blocks of at least (14 // 3)² = 16 patches fill the budget to within a small block.
      else expect(count).toBeGreaterThan(ratio * 196 - 16);
    }
    expect(empty / n).toBeGreaterThan(0.4);
    expect(empty / n).toBeLessThan(0.6);
  });

  it('masks are unions of rectangles inside the grid, smaller than it on both sides', () => {
    const rng = new Rng(11);
    const log = [Math.log(0.3), Math.log(1 / 0.3)] as [number, number];
    for (let i = 0; i < 50; i++) {
      const { mask, blocks } = blockMask(rng, 8, 12, 0.45 * 96, log);
      expect(blocks.length).toBeGreaterThan(0);
      const union = new Uint8Array(96);
      for (const b of blocks) {
        expect(b.height).toBeGreaterThan(0);
        expect(b.width).toBeGreaterThan(0);
        expect(b.height).toBeLessThan(8);
        expect(b.width).toBeLessThan(12);
        expect(b.top + b.height).toBeLessThanOrEqual(8);
        expect(b.left + b.width).toBeLessThanOrEqual(12);
        for (let r = b.top; r < b.top + b.height; r++) for (let c = b.left; c < b.left + b.width; c++) union[r * 12 + c] = 1;
      }
      expect(Array.from(mask)).toEqual(Array.from(union));
    }
  });

  it('is deterministic for a seed, starts at predStartEpoch, and draws "rand" masks of int(ratio·HW) patches', () => {
    const gen = new BlockMaskingGenerator({ predRatio: 0.3, predRatioVar: 0.2, predStartEpoch: 2 });
    const draw = (seed: number) => Array.from({ length: 8 }, (_, i) => Array.from(gen.generate(new Rng(seed + i), 14, 14, 5)));
    expect(draw(1)).toEqual(draw(1));
    expect(draw(1)).not.toEqual(draw(2));
    expect(gen.generate(new Rng(1), 14, 14, 1).every((v) => v === 0)).toBe(true);
    const rand = new BlockMaskingGenerator({ predRatio: 0.25, predShape: 'rand' });
    expect(rand.generate(new Rng(4), 6, 6).reduce((s, v) => s + v, 0)).toBe(9);
    expect(() => new BlockMaskingGenerator({ predRatio: 0.1, predRatioVar: 0.2 })).toThrow(/0\.1 ± 0\.2/);
  });
});
