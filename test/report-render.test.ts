// The report renders a logged view again exactly: for every logged step and sample, the chosen pair
// rendered from the log's parameters and dataset indices equals, bit for bit, the tensor the training
// step trained on (captured from the method's trainStep), with and without blur.

import { describe, expect, it } from 'vitest';
import { ops, type Tensor } from '../engine/index.js';
import type { Method } from '../hvp/methods/method.js';
import { renderLoggedStep } from '../hvp/report/gallery.js';
import { readRun } from '../hvp/report/run.js';
import { pretrain } from '../hvp/train/loop.js';
import { sharedEngine, syntheticDataset, tiny } from './train-helpers.js';

describe('report re-rendering', () => {
  for (const [name, size] of [['12 px views', 12], ['36 px views (blurred ones among them)', 36]] as const) {
    it(`${name}: the chosen pair equals the training batch bit for bit`, async () => {
      const engine = await sharedEngine();
      const config = tiny({ method: 'simsiam', views: 3, size, trainLimit: 16, epochs: 1, logSamples: 2 });
      const trained = new Map<number, Tensor>();
      const wrapMethod = (m: Method): Method =>
        Object.assign(Object.create(m) as Method, {
          trainStep(views: Tensor[], ctx: Parameters<Method['trainStep']>[1], gather: Parameters<Method['trainStep']>[2]) {
            trained.set(ctx.step, engine.keep(engine.noGrad(() => ops.clone(views[0]))));
            return m.trainStep(views, ctx, gather);
          },
        });
      const ds = syntheticDataset(3);
      await pretrain(config, { engine, dataset: ds, progress: false, wrapMethod });
      const run = await readRun(config.out);
      expect(run.steps.map((s) => s.step)).toEqual([0, 1]);
      let blurred = 0;
      for (const rec of run.steps) {
        const [group] = await renderLoggedStep(engine, ds, rec, run.config);
        const got = new Uint32Array(group.data.buffer);
        const want = new Uint32Array(((await trained.get(rec.step)!.toArray()) as Float32Array).slice().buffer);
        const B = rec.selected.length;
        const per = 3 * size * size;
        expect(rec.indices).toHaveLength(B);
        expect(rec.candidate_scores).toHaveLength(2);
        for (let b = 0; b < B; b++) {
          rec.selected[b].forEach((v, slot) => {
            const a = got.subarray((v * B + b) * per, (v * B + b + 1) * per);
            const t = want.subarray((slot * B + b) * per, (slot * B + b + 1) * per);
            expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(t.buffer, t.byteOffset, t.byteLength)), `step ${rec.step} sample ${b} slot ${slot}`).toBe(true);
          });
        }
        blurred += rec.views[0].filter((p) => p.blurSigma > 0).length;
      }
      if (size > 32) expect(blurred).toBeGreaterThan(0);
      for (const t of trained.values()) t.dispose();
    });
  }
});
