// The HVP step against the random-view step (V = 2, plain SimSiam training) of the same network:
// ms per step (`step_ratio` = HVP / random), the phases of hvpStep as fractions of the step (views,
// selection forward including scoring, argmax + gather, training step; measured in a separate step,
// since `times` syncs after each phase), the scoring kernel alone at the step's shape, and the peak
// pooled GPU memory against the random step's (`peak_ratio`). Synthetic uint8 images: no dataset.
// ResNet steps are also timed in PyTorch on the CPU (peers/torch.ts): the same network (parameter
// counts compared: `params`, `torch_params`), views, selection and SGD step, `torch_ratio` =
// torch_ms / ours_ms. Both sides' times include generating the views (`frac_views`, `torch_views_ms`).

import { Rng, type Engine, type Tensor } from '../../engine/index.js';
import { packBatch } from '../../hvp/data/loader.js';
import type { Image } from '../../hvp/data/types.js';
import { createMethod, type Method } from '../../hvp/methods/index.js';
import { combinationTable, pairCombinations, scoreSimSiam } from '../../hvp/select/index.js';
import { DEFAULTS, effectiveLr, validateConfig, type TrainConfig } from '../../hvp/train/config.js';
import { hvpStep, type StepTimes } from '../../hvp/train/hvp-step.js';
import type { BenchCase, BenchContext, OursTiming } from '../case.js';
import type { TorchOutcome, TorchStepSpec } from '../peers/torch.js';
import type { Timing } from '../timing.js';
import { timeOurs } from './common.js';

export interface StepNet {
  /** Label of the network in case names, and the key of its random-step baseline. */
  label: string;
  arch: 'resnet18' | 'resnet50' | 'vit_tiny' | 'vit_small';
  widths: number[];
  size: number;
  channels: number;
  batch: number;
  /** SimSiam projector and predictor widths. */
  dim: number;
  predDim: number;
  /** Standard stem (7×7 stride-2 conv and max-pool) instead of the small-image one; the default is the small-image stem. */
  standardStem?: boolean;
}

interface Measured {
  timing: Timing;
  peakBytes: number;
  /** Parameters of the method's model (backbone and heads), for the comparison with the PyTorch network. */
  params: number;
}

/** Random-step measurements of this process, per network, for the HVP cases that follow. */
const randomSteps = new Map<string, Measured>();

export function stepConfig(net: StepNet, views: number, selectRes: number): TrainConfig {
  return validateConfig({
    ...DEFAULTS,
    method: 'simsiam',
    arch: net.arch,
    widths: net.widths,
    smallImage: !net.standardStem,
    size: net.size,
    batchSize: net.batch,
    dim: net.dim,
    predDim: net.predDim,
    views,
    select: views === 2 ? 'random' : 'hardest',
    selectRes,
  });
}

export function syntheticBatch(net: StepNet, rng: Rng) {
  const images: Image[] = Array.from({ length: net.batch }, (_, i) => ({
    pixels: Uint8Array.from({ length: net.channels * net.size * net.size }, () => rng.int(256)),
    height: net.size,
    width: net.size,
    label: i % 10,
  }));
  return packBatch(images, images.map((_, i) => i));
}

export function disposeMethod(m: Method): void {
  for (const s of m.optimizer.stateDict().state) for (const t of Object.values(s.buffers)) t.dispose();
  for (const p of m.model.parameters()) p.dispose();
  for (const [, b] of m.model.namedBuffers()) b.dispose();
}

/** Wall time of whole steps (each awaits its phases; timestamps cannot bracket one). */
async function timeSteps(engine: Engine, step: (i: number) => Promise<void>, opts: { warmup?: number; reps?: number }): Promise<Timing> {
  const runs: number[] = [];
  const warmup = opts.warmup ?? 1;
  for (let i = 0; i < warmup + Math.max(opts.reps ?? 1, 1); i++) {
    if (i === warmup) engine.backend.pool.resetPeak();
    const t0 = performance.now();
    await step(i);
    await engine.sync();
    if (i >= warmup) runs.push(performance.now() - t0);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return { medianMs: median, minMs: sorted[0], runsMs: runs, method: 'wall', wallMedianMs: median };
}

/** Time steps of one configuration; with `times`, one more step fills the phase breakdown. */
export async function measure(engine: Engine, net: StepNet, config: TrainConfig, reps: { warmup?: number; reps?: number }, times?: StepTimes) {
  const rng = new Rng(11);
  const method = createMethod({ engine, config, channels: net.channels, stepsPerEpoch: 1000, totalSteps: 1000, rng });
  const batch = syntheticBatch(net, rng);
  const mean = new Array<number>(net.channels).fill(0.5);
  const std = new Array<number>(net.channels).fill(0.25);
  const step = (i: number, t?: StepTimes) =>
    engine.scopeAsync(async () => {
      await hvpStep({ engine, method, config, mean, std, times: t }, batch, { step: i, epoch: 0, totalSteps: 1000 });
    });
  const timing = await timeSteps(engine, (i) => step(i), reps);
  const peakBytes = engine.backend.memory().peakBytesInUse;
  if (times) await step(999, times);
  await engine.sync();
  const params = method.model.parameters().reduce((n, p) => n + p.size, 0);
  disposeMethod(method);
  return { timing, peakBytes, params };
}

/** What torch_step.py times for a case: the network, views and SGD settings of `config`. */
export function torchStepSpec(net: StepNet, config: TrainConfig, time: { warmup?: number; reps?: number }, params: number): TorchStepSpec {
  return {
    arch: net.arch === 'resnet50' ? 'resnet50' : 'resnet18',
    smallImage: !net.standardStem,
    widths: net.widths.length ? net.widths : [64, 128, 256, 512],
    channels: net.channels,
    size: net.size,
    batch: net.batch,
    views: config.views,
    mode: config.views === 2 ? 'random' : 'hvp',
    selectRes: config.selectRes,
    dim: config.dim,
    predDim: config.predDim,
    lr: effectiveLr(config),
    momentum: config.momentum,
    weightDecay: config.weightDecay,
    zeroInitResidual: config.zeroInitResidual,
    warmup: time.warmup ?? 1,
    reps: time.reps ?? 1,
    expectParams: params,
  };
}

/** Parameters of our SimSiam model (backbone and heads) for `config`. */
export function modelParams(engine: Engine, net: StepNet, config: TrainConfig): number {
  const method = createMethod({ engine, config, channels: net.channels, stepsPerEpoch: 1000, totalSteps: 1000, rng: new Rng(11) });
  const n = method.model.parameters().reduce((s, p) => s + p.size, 0);
  disposeMethod(method);
  return n;
}

/**
 * The same steps in PyTorch on the peer's device, or why not (ViTs are not ported; a failed run says
 * why). On CUDA also under autocast in bf16 (`amp`), as a GPU user would train.
 */
async function torchStep(ctx: BenchContext, net: StepNet, config: TrainConfig, params: number): Promise<{ fp32?: TorchOutcome; amp?: TorchOutcome }> {
  if (!ctx.torch) return {};
  if (!torchPorted(net)) return { fp32: { skipped: `no PyTorch port of ${net.arch}` } };
  const spec = torchStepSpec(net, config, ctx.time, params);
  const attempt = async (amp: '' | 'bf16'): Promise<TorchOutcome> => {
    try {
      return await ctx.torch!.step({ ...spec, amp });
    } catch (e) {
      // The bench goes on without the peer for this case; the record and its line carry the reason.
      return { skipped: e instanceof Error ? e.message : String(e) };
    }
  };
  const fp32 = await attempt('');
  return ctx.torch.device === 'cuda' ? { fp32, amp: await attempt('bf16') } : { fp32 };
}

/** Whether torch_step.py builds this network (ResNet-18 and ResNet-50, either stem, any widths; no ViT). */
export function torchPorted(net: StepNet): boolean {
  return net.arch === 'resnet18' || net.arch === 'resnet50';
}

/** The scoring kernel alone on [V, B, dim] head outputs (all V(V-1)/2 pairs). */
async function scoringTime(ctx: BenchContext, views: number, batch: number, dim: number): Promise<number> {
  const rng = new Rng(12);
  const [p, z] = [0, 1].map(() => ctx.engine.randn([views, batch, dim], rng));
  const table = combinationTable(ctx.engine, pairCombinations(views));
  const t = await timeOurs({ ...ctx, time: { warmup: 1, reps: 3, clock: null } }, () => [scoreSimSiam(p, z, table)]);
  [p, z, table].forEach((x: Tensor) => x.dispose());
  return t.wallMedianMs;
}

export function hvpStepCase(net: StepNet, views: number, selectRes: number, quick: boolean): BenchCase {
  const random = views === 2;
  const res = selectRes ? `, select at ${selectRes} px` : '';
  return {
    name: random ? `random step ${net.label}` : `hvp step ${net.label}`,
    shape: `V=${views}${res}, batch ${net.batch}, ${net.channels}x${net.size}x${net.size}`,
    quick,
    images: net.batch,
    torch: torchPorted(net),
    // A warm-up step creates the optimizer state and fills the pool; whole steps take seconds here.
    reps: { warmup: 1, reps: 2 },
    ours: async (ctx: BenchContext): Promise<OursTiming> => {
      const { engine } = ctx;
      const times: StepTimes = { views: 0, selectionForward: 0, select: 0, train: 0 };
      const config = stepConfig(net, views, selectRes);
      const me = await measure(engine, net, config, ctx.time, times);
      const { fp32: torch, amp } = await torchStep(ctx, net, config, me.params);
      const total = times.views + times.selectionForward + times.select + times.train;
      const figures: Record<string, number> = {
        frac_views: times.views / total,
        frac_selection_forward: times.selectionForward / total,
        frac_select: times.select / total,
        frac_train: times.train / total,
        params: me.params,
      };
      if (amp && 'medianMs' in amp) {
        figures.torch_amp_ms = amp.medianMs;
        figures.torch_amp_ratio = amp.medianMs / me.timing.wallMedianMs;
      }
      if (random) {
        randomSteps.set(net.label, me);
        return { ...me.timing, peakBytes: me.peakBytes, figures, torch };
      }
      let base = randomSteps.get(net.label);
      if (!base) {
        base = await measure(engine, net, stepConfig(net, 2, 0), ctx.time);
        randomSteps.set(net.label, base);
      }
      figures.score_ms = await scoringTime(ctx, views, net.batch, net.dim);
      figures.frac_scoring = figures.score_ms / me.timing.wallMedianMs;
      figures.step_ratio = me.timing.wallMedianMs / base.timing.wallMedianMs;
      figures.peak_ratio = me.peakBytes / base.peakBytes;
      return { ...me.timing, peakBytes: me.peakBytes, baselines: { random: base.timing }, figures, torch };
    },
  };
}

/** Random step, then HVP at full resolution and with half-resolution selection (`grid`: [views, selectRes]). */
function netCases(net: StepNet, grid: [number, number][], quick: (views: number, selectRes: number) => boolean): BenchCase[] {
  return grid.map(([v, r]) => hvpStepCase(net, v, r, quick(v, r)));
}

// The demo's narrow ResNet-18 on 28 px grey images at batch 64, with 4 and 8 views; the full-width
// ResNet-18 and ViT-tiny/4 on 32 px colour images at batch 4 with 4 views only, since one full-width
// step at batch 64 takes ~45 s on lavapipe (bench/RESULTS.md) and an 8-view HVP step several times that.
export const NARROW: StepNet = { label: 'resnet18 8/16/32/64', arch: 'resnet18', widths: [8, 16, 32, 64], size: 28, channels: 1, batch: 64, dim: 256, predDim: 64 };
export const FULL: StepNet = { label: 'resnet18', arch: 'resnet18', widths: [], size: 32, channels: 3, batch: 4, dim: 2048, predDim: 512 };
const VIT: StepNet = { label: 'vit_tiny/4', arch: 'vit_tiny', widths: [], size: 32, channels: 3, batch: 4, dim: 2048, predDim: 512 };

export const hvpStepCases: BenchCase[] = [
  ...netCases(NARROW, [[2, 0], [4, 0], [8, 0], [4, 14], [8, 14]], (v, r) => r === 0 && v <= 4),
  ...netCases(FULL, [[2, 0], [4, 0], [4, 16]], () => false),
  ...netCases(VIT, [[2, 0], [4, 0], [4, 16]], () => false),
];
