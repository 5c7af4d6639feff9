// Optimizers, schedules, clipping and the EMA against float64 references of PyTorch's (and DINO's)
// update equations. Parameters include sizes that are not multiples of the workgroup size and views
// with a nonzero offset into their storage; gradients are fresh random values at every step.

import { describe, expect, it } from 'vitest';
import { optim, Rng, type Engine, type Tensor } from '../engine/index.js';
import { engine, expectClose, fromGpu } from './helpers.js';
import { Nd } from './ref.js';

const SHAPES = [[7, 37], [300], [5], [3, 4]];

/** f32-representable values in ±[0.1, 1.1]·scale, so the reference sees exactly what the GPU sees. */
function randF32(n: number, rng: Rng, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround((rng.uniform() < 0.5 ? -1 : 1) * (0.1 + rng.uniform()) * scale));
}

/** A parameter holding `data`; with `offset`, a contiguous view at that element offset of a larger storage. */
function param(e: Engine, data: Float64Array, shape: number[], offset = 0): Tensor {
  if (!offset) return e.parameter(e.tensor(Float32Array.from(data), shape));
  const big = e.tensor(Float32Array.from([...new Array(offset).fill(7), ...data]));
  return e.parameter(viewAt(big, offset, shape));
}

/** A contiguous view of `big` from `offset` on, reshaped; `big` and the intermediate view are released. */
function viewAt(big: Tensor, offset: number, shape: readonly number[]): Tensor {
  const tail = big.slice(0, offset);
  const view = tail.reshape([...shape]);
  tail.dispose();
  big.dispose();
  return view;
}

interface Case {
  params: Tensor[];
  ref: Float64Array[];
}

function makeCase(e: Engine, rng: Rng): Case {
  const ref = SHAPES.map((s) => randF32(s.reduce((a, b) => a * b, 1), rng));
  // The last parameter is a view at offset 5 of its storage.
  const params = SHAPES.map((s, i) => param(e, ref[i], s, i === SHAPES.length - 1 ? 5 : 0));
  return { params, ref };
}

/** Give `p` the gradient `g`; every other step it arrives as a view at an offset, as a slice would. */
function setGrad(e: Engine, p: Tensor, g: Float64Array, offset: number): void {
  p.grad?.dispose();
  p.grad = e.keep(offset ? viewAt(e.tensor(Float32Array.from([...new Array(offset).fill(3), ...g])), offset, p.shape) : e.tensor(Float32Array.from(g), p.shape));
}

async function expectParams(c: Case, label: string, tol = { rtol: 2e-5, atol: 1e-6 }): Promise<void> {
  for (let i = 0; i < c.params.length; i++) {
    expectClose(await fromGpu(c.params[i]), new Nd(c.ref[i], [...c.params[i].shape]), tol, `${label} param ${i}`);
  }
}

function release(c: Case, opt?: optim.Optimizer<optim.GroupHyper>): void {
  for (const p of c.params) {
    p.grad?.dispose();
    p.dispose();
  }
  for (const s of opt?.stateDict().state ?? []) for (const t of Object.values(s.buffers)) t.dispose();
}

// ---------------------------------------------------------------- float64 references (PyTorch's equations)

interface SgdRef {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}
function sgdRef(p: Float64Array, g: Float64Array, buf: Float64Array | null, h: SgdRef): Float64Array | null {
  const d = g.map((gi, i) => gi + h.weightDecay * p[i]);
  let next: Float64Array | null = null;
  if (h.momentum !== 0) {
    next = buf ? buf.map((b, i) => h.momentum * b + d[i]) : Float64Array.from(d); // PyTorch clones d on the first step
    for (let i = 0; i < d.length; i++) d[i] = h.nesterov ? d[i] + h.momentum * next[i] : next[i];
  }
  for (let i = 0; i < p.length; i++) p[i] -= h.lr * d[i];
  return next;
}

interface AdamRef {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}
function adamwRef(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, step: number, h: AdamRef): void {
  const [b1, b2] = h.betas;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.weightDecay;
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    const denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** step) + h.eps;
    p[i] -= (h.lr / (1 - b1 ** step)) * (m[i] / denom);
  }
}

interface LarsRef {
  lr: number;
  momentum: number;
  weightDecay: number;
  eta: number;
}
/** DINO's utils.LARS step: 1-d parameters get plain momentum SGD without decay; others d = (g + wd·p)·eta‖p‖/‖g + wd·p‖. */
function larsRef(p: Float64Array, g: Float64Array, mu: Float64Array, ndim: number, h: LarsRef): void {
  let d = Float64Array.from(g);
  if (ndim !== 1) {
    d = d.map((gi, i) => gi + h.weightDecay * p[i]);
    const pn = Math.hypot(...p);
    const dn = Math.hypot(...d);
    const q = pn > 0 && dn > 0 ? (h.eta * pn) / dn : 1;
    d = d.map((x) => x * q);
  }
  for (let i = 0; i < p.length; i++) {
    mu[i] = h.momentum * mu[i] + d[i];
    p[i] -= h.lr * mu[i];
  }
}

// ---------------------------------------------------------------- tests

describe('optimizers against float64 references', async () => {
  const e = await engine();

  const sgdConfigs: SgdRef[] = [
    { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: false },
    { lr: 0.05, momentum: 0.8, weightDecay: 0.05, nesterov: true },
    { lr: 0.2, momentum: 0, weightDecay: 0.1, nesterov: false },
  ];
  for (const h of sgdConfigs) {
    it(`SGD momentum ${h.momentum}${h.nesterov ? ' nesterov' : ''} wd ${h.weightDecay}: 3 steps`, async () => {
      const rng = new Rng(11 + h.lr * 100);
      const c = makeCase(e, rng);
      const opt = new optim.SGD(c.params, h);
      const bufs: (Float64Array | null)[] = c.params.map(() => null);
      for (let step = 0; step < 3; step++) {
        c.params.forEach((p, i) => {
          const g = randF32(p.size, rng);
          setGrad(e, p, g, step % 2 ? 3 : 0);
          bufs[i] = sgdRef(c.ref[i], g, bufs[i], h);
        });
        opt.step();
      }
      await expectParams(c, 'SGD');
      release(c, opt);
    });
  }

  it('LARS: 3 steps with momentum and weight decay; 1-d parameters excluded; a zero weight gets ratio 1; a 2-workgroup norm', async () => {
    const rng = new Rng(21);
    const c = makeCase(e, rng);
    // A zero-initialised weight (‖w‖ = 0 on the first step) and one of 7000 elements (its norms span 2 workgroups).
    c.ref.push(new Float64Array(12), randF32(7000, rng));
    c.params.push(param(e, c.ref[4], [3, 4]), param(e, c.ref[5], [70, 100]));
    const h: LarsRef = { lr: 0.5, momentum: 0.9, weightDecay: 0.05, eta: 0.02 };
    const opt = new optim.LARS([{ params: c.params.slice(0, 4) }, { params: c.params.slice(4), eta: 0.1 }], h);
    const mu = c.ref.map((r) => new Float64Array(r.length));
    expect(c.params.map((p) => optim.larsExcluded(p))).toEqual([false, true, true, false, false, false]);
    for (let step = 0; step < 3; step++) {
      if (step === 2) {
        opt.setLr('all', 0.2);
        opt.setWeightDecay(0, 0.1);
      }
      c.params.forEach((p, i) => {
        const g = randF32(p.size, rng, i === 1 ? 10 : 1);
        setGrad(e, p, g, step % 2 ? 3 : 0);
        const hh = { ...h, ...(i >= 4 ? { eta: 0.1 } : {}), ...(step === 2 ? { lr: 0.2, weightDecay: i < 4 ? 0.1 : h.weightDecay } : {}) };
        larsRef(c.ref[i], g, mu[i], p.ndim, hh);
      });
      opt.step();
    }
    await expectParams(c, 'LARS', { rtol: 1e-4, atol: 1e-6 });
    const st = opt.stateDict().state[0].buffers;
    expectClose(await fromGpu(st.momentumBuffer), new Nd(mu[0], [7, 37]), { rtol: 1e-4, atol: 1e-7 }, 'LARS momentum buffer');
    expect(() => new optim.LARS(c.params, { lr: 0.1, eta: 0 })).toThrow(/LARS: invalid .* eta 0/);
    release(c, opt);
  });

  it('AdamW: 3 steps, a parameter without gradient is skipped and keeps its own step count', async () => {
    const rng = new Rng(5);
    const c = makeCase(e, rng);
    const h: AdamRef = { lr: 0.01, betas: [0.8, 0.95], eps: 1e-6, weightDecay: 0.05 };
    const opt = new optim.AdamW(c.params, h);
    const m = c.ref.map((r) => new Float64Array(r.length));
    const v = c.ref.map((r) => new Float64Array(r.length));
    const steps = c.params.map(() => 0);
    for (let step = 0; step < 3; step++) {
      c.params.forEach((p, i) => {
        if (step === 1 && i === 1) {
          p.grad?.dispose();
          p.grad = null;
          return;
        }
        const g = randF32(p.size, rng);
        setGrad(e, p, g, step % 2 ? 0 : 2);
        adamwRef(c.ref[i], g, m[i], v[i], ++steps[i], h);
      });
      opt.step();
    }
    expect(opt.stateDict().state.map((s) => s.step)).toEqual([3, 2, 3, 3]);
    await expectParams(c, 'AdamW');
    const st = opt.stateDict().state[0].buffers;
    expectClose(await fromGpu(st.expAvg), new Nd(m[0], [7, 37]), { rtol: 2e-5, atol: 1e-7 }, 'exp_avg');
    expectClose(await fromGpu(st.expAvgSq), new Nd(v[0], [7, 37]), { rtol: 2e-5, atol: 1e-8 }, 'exp_avg_sq');
    release(c, opt);
  });

  it('parameter groups: own lr and weight decay, setLr / setWeightDecay between steps', async () => {
    const rng = new Rng(9);
    const c = makeCase(e, rng);
    const [a, b, d, f] = c.params;
    // DINO's split: decayed weights, undecayed biases and norms with a fixed lr here (SimSiam's predictor).
    const opt = new optim.AdamW(
      [
        { params: [a, d] },
        { params: [b, f], weightDecay: 0, lr: 0.002 },
      ],
      { lr: 0.01, weightDecay: 0.04, betas: [0.9, 0.999], eps: 1e-8 },
    );
    const group = [0, 1, 0, 1];
    const hyper: AdamRef[] = [
      { lr: 0.01, weightDecay: 0.04, betas: [0.9, 0.999], eps: 1e-8 },
      { lr: 0.002, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 },
    ];
    const m = c.ref.map((r) => new Float64Array(r.length));
    const v = c.ref.map((r) => new Float64Array(r.length));
    for (let step = 1; step <= 3; step++) {
      if (step === 2) {
        opt.setLr(0, 0.03);
        opt.setWeightDecay(0, 0.2);
        hyper[0] = { ...hyper[0], lr: 0.03, weightDecay: 0.2 };
      }
      if (step === 3) {
        opt.setLr('all', 0.005);
        hyper.forEach((hh, k) => (hyper[k] = { ...hh, lr: 0.005 }));
      }
      c.params.forEach((p, i) => {
        const g = randF32(p.size, rng);
        setGrad(e, p, g, 0);
        adamwRef(c.ref[i], g, m[i], v[i], step, hyper[group[i]]);
      });
      opt.step();
    }
    await expectParams(c, 'groups');
    expect(() => opt.setLr(2, 0.1)).toThrow(/AdamW: no parameter group 2/);
    release(c, opt);
  });

  for (const kind of ['SGD', 'AdamW'] as const) {
    it(`${kind} state dict round trip continues identically`, async () => {
      const rng = new Rng(kind.length);
      const make = (c: Case): optim.Optimizer<optim.GroupHyper> =>
        kind === 'SGD' ? new optim.SGD(c.params, { lr: 0.1, momentum: 0.9, nesterov: true }) : new optim.AdamW(c.params, { lr: 0.01, betas: [0.7, 0.9] });
      const c1 = makeCase(e, rng);
      const o1 = make(c1);
      const grads = [0, 1, 2].map(() => c1.params.map((p) => randF32(p.size, rng)));
      for (const step of [0, 1]) {
        c1.params.forEach((p, i) => setGrad(e, p, grads[step][i], 0));
        o1.step();
      }
      // Checkpoint through the CPU, as a file would: parameters and optimizer state.
      const saved = o1.stateDict();
      const cpuState = await Promise.all(
        saved.state.map(async (s) => ({ step: s.step, buffers: await Promise.all(Object.entries(s.buffers).map(async ([n, t]) => [n, await t.toArray(), t.shape] as const)) })),
      );
      const cpuParams = await Promise.all(c1.params.map((p) => p.toArray()));
      const resume = (load: boolean) => {
        const c = { params: c1.params.map((p, i) => param(e, Float64Array.from(cpuParams[i]), [...p.shape])), ref: [] };
        const o = make(c);
        if (load) {
          const state = cpuState.map((s) => ({ step: s.step, buffers: Object.fromEntries(s.buffers.map(([n, d, sh]) => [n, e.tensor(d, sh)])) }));
          o.loadStateDict({ groups: saved.groups, state });
          for (const s of state) for (const t of Object.values(s.buffers)) t.dispose();
        }
        return { c, o };
      };
      const r = resume(true);
      const fresh = resume(false);
      for (const run of [{ c: c1, o: o1 }, r, fresh]) {
        run.c.params.forEach((p, i) => setGrad(e, p, grads[2][i], 0));
        run.o.step();
      }
      for (let i = 0; i < c1.params.length; i++) {
        const want = await c1.params[i].toArray();
        expect(await r.c.params[i].toArray(), `param ${i}`).toEqual(want);
        expect(await fresh.c.params[i].toArray(), 'an optimizer without the state must differ').not.toEqual(want);
      }
      expect(r.o.stateDict().state.map((s) => s.step)).toEqual([3, 3, 3, 3]);
      for (const run of [{ c: c1, o: o1 }, r, fresh]) release(run.c, run.o);
    });
  }

  it('rejects bad parameters, gradients and state dicts, naming the optimizer and the shapes', async () => {
    const p = e.parameter(e.tensor([1, 2, 3, 4, 5, 6], [2, 3]));
    expect(() => new optim.SGD([p.T], { lr: 0.1 })).toThrow(/SGD: Tensor\(\[3, 2\]\) must be a contiguous f32 tensor/);
    expect(() => new optim.SGD([p, p], { lr: 0.1 })).toThrow(/SGD: Tensor\(\[2, 3\]\) appears more than once/);
    expect(() => new optim.AdamW([p], { betas: [1.2, 0.9] })).toThrow(/AdamW: invalid/);
    const opt = new optim.SGD([p], { lr: 0.1, momentum: 0.9 });
    p.grad = e.keep(e.tensor([1, 2, 3, 4, 5, 6], [3, 2]));
    expect(() => opt.step()).toThrow(/SGD.step: gradient \[3, 2\] of Tensor\(\[2, 3\]\)/);
    const bad = { groups: opt.stateDict().groups, state: [{ step: 1, buffers: { momentumBuffer: e.zeros([6]) } }] };
    expect(() => opt.loadStateDict(bad)).toThrow(/SGD.loadStateDict: momentumBuffer of Tensor\(\[2, 3\]\) is \[6\], expected \[2, 3\]/);
    bad.state[0].buffers.momentumBuffer.dispose();
    p.grad.dispose();
    p.dispose();
  });
});

describe('cosine schedule (DINO cosine_scheduler)', () => {
  /** The direct formula, written independently of the implementation's two loops. */
  function direct(k: number, base: number, final: number, total: number, warmup: number, start: number): number {
    if (k < warmup) return start + (k * (base - start)) / (warmup - 1);
    return final + 0.5 * (base - final) * (1 + Math.cos((Math.PI * (k - warmup)) / (total - warmup)));
  }

  it('warm-up start and end, middle, last', () => {
    const [base, final, epochs, iters, warm, start] = [5e-4, 1e-6, 10, 7, 2, 1e-5];
    const s = optim.cosineSchedule(base, final, epochs, iters, warm, start);
    expect(s.length).toBe(70);
    expect(s[0]).toBe(start);
    expect(s[13]).toBe(base);
    expect(s[14]).toBeCloseTo(base, 15);
    expect(s[14 + 28]).toBeCloseTo((base + final) / 2, 15);
    for (const k of [0, 6, 13, 14, 30, 42, 69]) expect(s[k]).toBeCloseTo(direct(k, base, final, 70, 14, start), 15);
    expect(s[69]).toBeGreaterThan(final);
    expect(s[69] - final).toBeCloseTo(0.5 * (base - final) * (1 + Math.cos(Math.PI * 55 / 56)), 15);
  });

  it('no warm-up, rising schedules (teacher momentum) and bad step counts', () => {
    const m = optim.cosineSchedule(0.996, 1, 3, 5);
    expect(m[0]).toBe(0.996);
    for (let k = 1; k < 15; k++) {
      expect(m[k]).toBeGreaterThan(m[k - 1]);
      expect(m[k]).toBeCloseTo(direct(k, 0.996, 1, 15, 0, 0), 15);
    }
    expect(() => optim.cosineSchedule(1, 0, 2, 3, 2.5)).toThrow(/cosineSchedule/);
  });
});

describe('clipping and EMA', async () => {
  const e = await engine();
  // Sizes across the partial-sum layout: tiny, not a multiple of 256, several workgroups, and past the
  // 256-workgroup cap (grid-stride loop).
  const shapes = [[1], [7, 37], [3, 3000], [1100, 1000]];

  async function gradsCase(rng: Rng, scale: number) {
    const ps = shapes.map((s) => e.parameter(e.zeros(s)));
    const gs = ps.map((p) => randF32(p.size, rng, scale));
    ps.forEach((p, i) => setGrad(e, p, gs[i], i === 1 ? 4 : 0));
    // A parameter without gradient is ignored.
    const none = e.parameter(e.zeros([3]));
    return { ps: [...ps, none], gs };
  }
  const sq = (g: Float64Array) => g.reduce((s, x) => s + x * x, 0);

  for (const maxNorm of [1, 1e6, Infinity]) {
    it(`clipGradNorm with max norm ${maxNorm}`, async () => {
      const { ps, gs } = await gradsCase(new Rng(3), 0.01);
      const norm = Math.sqrt(gs.reduce((s, g) => s + sq(g), 0));
      const got = e.scope(() => optim.clipGradNorm(ps, maxNorm));
      expect(got.shape).toEqual([]);
      expect(Math.abs((await got.item()) / norm - 1)).toBeLessThan(1e-5);
      const factor = Math.min(1, maxNorm / (norm + 1e-6));
      if (maxNorm === 1) expect(factor).toBeLessThan(0.5);
      for (let i = 0; i < gs.length; i++) {
        expectClose(await fromGpu(ps[i].grad!), new Nd(gs[i].map((x) => x * factor), [...shapes[i]]), { rtol: 1e-5, atol: 1e-9 }, `grad ${i}`);
      }
      got.dispose();
      for (const p of ps) {
        p.grad?.dispose();
        p.dispose();
      }
    });
  }

  it('clipGradients (DINO): each gradient clipped by its own norm', async () => {
    const { ps, gs } = await gradsCase(new Rng(4), 0.01);
    const norms = gs.map((g) => Math.sqrt(sq(g)));
    const maxNorm = 0.5; // below the two large gradients' norms, above the two small ones
    expect(norms.map((n) => n > maxNorm)).toEqual([false, false, true, true]);
    const got = optim.clipGradients(ps, maxNorm);
    expectClose(await fromGpu(got), new Nd(Float64Array.from(norms), [4]), { rtol: 1e-5, atol: 1e-9 }, 'norms');
    for (let i = 0; i < gs.length; i++) {
      const f = Math.min(1, maxNorm / (norms[i] + 1e-6));
      expectClose(await fromGpu(ps[i].grad!), new Nd(gs[i].map((x) => x * f), [...shapes[i]]), { rtol: 1e-5, atol: 1e-9 }, `grad ${i}`);
    }
    got.dispose();
    for (const p of ps) {
      p.grad?.dispose();
      p.dispose();
    }
  });

  it('emaUpdate: t = m·t + (1 − m)·s in place', async () => {
    const rng = new Rng(21);
    const c = makeCase(e, rng);
    const student = SHAPES.map((s, i) => {
      const d = randF32(c.ref[i].length, rng);
      return { d, t: param(e, d, s, i === 0 ? 3 : 0) };
    });
    const m = 0.7;
    optim.emaUpdate(c.params, student.map((s) => s.t), m);
    optim.emaUpdate(c.params, student.map((s) => s.t), m);
    c.ref.forEach((r, i) => r.forEach((x, k) => (r[k] = m * (m * x + (1 - m) * student[i].d[k]) + (1 - m) * student[i].d[k])));
    await expectParams(c, 'ema', { rtol: 1e-5, atol: 1e-7 });
    expect(() => optim.emaUpdate([c.params[0]], [c.params[1]], m)).toThrow(/emaUpdate: teacher Tensor\(\[7, 37\]\) and student Tensor\(\[300\]\)/);
    expect(() => optim.emaUpdate(c.params, [], m)).toThrow(/emaUpdate: 4 teacher tensors for 0 student/);
    for (const s of student) s.t.dispose();
    release(c);
  });
});
