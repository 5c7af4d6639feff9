// The runtime's host steps: a readback, a host computation and an upload in the middle of the
// dispatch stream, while the code that encodes stays synchronous. Checked: later dispatches see the
// step's upload and earlier ones do not; chained steps (each reading what the one before wrote);
// uploads and batches behind a step wait for it, in order; nothing behind a step is submitted before
// the sync point; a failing step surfaces at the sync point and leaves the runtime usable; trim waits
// for the held work; the profiler refuses to start over held work.

import { describe, expect, it } from 'vitest';
import { ops, type Tensor } from '../engine/index.js';
import { engine } from './helpers.js';

const region = (t: Tensor) => ({ buffer: t.buffer, byteOffset: t.offset * 4, byteLength: t.size * 4 });

describe('Runtime.hostStep', async () => {
  const e = await engine();
  const rt = e.backend;

  it('reads what the dispatches before it wrote; the dispatches after it read its upload', async () => {
    await e.scopeAsync(async () => {
      const x = e.tensor(Float32Array.from([1, 2, 3, 4]), [4]);
      const a = ops.mul(x, 2); // 2 4 6 8
      const box = e.zeros([4]);
      const seen: number[][] = [];
      rt.hostStep([region(a)], ([raw]) => {
        const v = new Float32Array(raw);
        seen.push([...v]);
        return [{ buffer: box.buffer, byteOffset: box.offset * 4, data: v.map((t) => t * t) }];
      });
      // Encoded behind the step: it reads the step's upload (4 16 36 64) + 1.
      const b = ops.add(box, 1);
      // A second step reads b (which depends on the first step's upload) and writes box again.
      rt.hostStep([region(b)], ([raw]) => {
        const v = new Float32Array(raw);
        seen.push([...v]);
        return [{ buffer: box.buffer, byteOffset: box.offset * 4, data: v.map((t) => -t) }];
      });
      // -b + b + a: a is the pre-step value, box the second step's upload.
      const d = ops.add(ops.add(box, b), a);
      expect(seen).toEqual([]);
      expect(rt.hasHeldWork).toBe(true);
      expect([...(await d.toArray())]).toEqual([2, 4, 6, 8]);
      expect(rt.hasHeldWork).toBe(false);
      expect(seen).toEqual([
        [2, 4, 6, 8],
        [5, 17, 37, 65],
      ]);
      expect([...(await b.toArray())]).toEqual([5, 17, 37, 65]);
    });
  });

  it('holds every submit and upload behind a step until the sync point, then runs them in order', async () => {
    await e.scopeAsync(async () => {
      const x = e.tensor(Float32Array.from([1, 1]), [2]);
      const y = ops.add(x, 1);
      const submits = rt.counters.submits;
      rt.hostStep([region(y)], () => []);
      // The work before the step went out with its readback.
      const afterStep = rt.counters.submits;
      expect(afterStep).toBeGreaterThan(submits);
      const z = ops.mul(y, 3); // 6 6
      // An upload behind the step: it must not overwrite x before the dispatches before it ran,
      // and it must land before the dispatch after it.
      rt.write(x.buffer, x.offset * 4, Float32Array.from([10, 20]));
      const w = ops.add(x, z); // 16 26
      rt.flush();
      expect(rt.counters.submits).toBe(afterStep);
      expect([...(await w.toArray())]).toEqual([16, 26]);
      expect([...(await z.toArray())]).toEqual([6, 6]);
      expect(rt.counters.submits).toBeGreaterThan(afterStep);
    });
  });

  it('a step that throws fails the sync point, drops the work behind it, and the runtime goes on', async () => {
    await e.scopeAsync(async () => {
      const x = e.tensor(Float32Array.from([1, 2]), [2]);
      rt.hostStep([region(x)], () => {
        throw new Error('collective failed');
      });
      ops.add(x, 1);
      await expect(e.sync()).rejects.toThrow(/collective failed/);
      expect(rt.hasHeldWork).toBe(false);
      expect([...(await ops.add(x, 1).toArray())]).toEqual([2, 3]);
    });
  });

  it('trim waits for the held work; the profiler and host steps exclude each other', async () => {
    await e.scopeAsync(async () => {
      const x = e.tensor(Float32Array.from([3]), [1]);
      const out = e.zeros([1]);
      rt.hostStep([region(x)], ([raw]) => [{ buffer: out.buffer, byteOffset: out.offset * 4, data: new Float32Array(raw) }]);
      // A freed buffer that a held batch binds: trimming now would destroy it under that batch.
      const tmp = ops.add(x, 1);
      const r = ops.add(tmp, out);
      tmp.dispose();
      rt.trim();
      expect(rt.memory().free).toBeGreaterThan(0);
      expect(() => rt.startProfile()).toThrow(/host steps are pending/);
      expect([...(await r.toArray())]).toEqual([7]);
      // The trim ran once the held batches were submitted.
      expect(rt.memory().free).toBe(0);
      // Nor does a host step start while a profile runs.
      rt.startProfile({ wall: true });
      expect(() => rt.hostStep([region(x)], () => [])).toThrow(/not available while a profile is running/);
      await rt.stopProfile();
    });
  });
});
