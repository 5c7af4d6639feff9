// The GPU kit's bench (`hvp bench --kit`): kernel cases of every family, whole training steps at the
// sizes a GPU trains at (ResNet-50 with SimSiam at 224 px and batch 64, random views, HVP with V = 4,
// and HVP selecting at 112 px; ViT-S/16 with DINO at batch 64 with 2 global and 6 local crops), the
// demo network's steps, and the loader where the bench has such a case. `--kit --quick` runs the same
// steps on tiny shapes (up to tens of seconds each on a CPU adapter, most of it compiling pipelines),
// so the kit can be proven without a GPU.
// The step cases here are extended: a plain `hvp bench` never runs them.

import { DEFAULTS, presetConfig, validateConfig, type TrainConfig } from '../../hvp/train/config.js';
import type { StepTimes } from '../../hvp/train/hvp-step.js';
import type { BenchCase, BenchContext, OursTiming } from '../case.js';
import { hvpStepCase, measure, NARROW, type StepNet } from './hvp-step.js';

/** Kernel families the kit times (case-name prefixes); the cases keep the bench's order. */
const KERNEL_FAMILIES = ['copy', 'matmul', 'conv2d', 'attention', 'layer_norm', 'softmax', 'batch_norm', 'score'];

const R50: StepNet = { label: 'resnet50', arch: 'resnet50', widths: [], size: 224, channels: 3, batch: 64, dim: 2048, predDim: 512, standardStem: true };
/** The same network on 32 px images at batch 2: the layout and kernels of the full step at 1/1500 of its work. */
const R50_QUICK: StepNet = { ...R50, label: 'resnet50 (quick)', size: 32, batch: 2 };

interface DinoShape {
  label: string;
  arch: 'vit_small' | 'vit_tiny';
  size: number;
  localSize: number;
  localCrops: number;
  batch: number;
  outDim: number;
}

const VITS_DINO: DinoShape = { label: 'vit_small/16 dino', arch: 'vit_small', size: 224, localSize: 96, localCrops: 6, batch: 64, outDim: 65536 };
/** ViT-S/16 itself on 32 px globals (4 patches) and 16 px locals (1 patch), batch 4, a 1024-way head. */
const VITS_DINO_QUICK: DinoShape = { label: 'vit_small/16 dino (quick)', arch: 'vit_small', size: 32, localSize: 16, localCrops: 2, batch: 4, outDim: 1024 };

/** DINO as the ImageNet preset trains it, at `s`'s sizes: 2 global views (random choice, plain DINO) and every local crop. */
export function dinoConfig(s: DinoShape): TrainConfig {
  return validateConfig({
    ...presetConfig('dino-imagenet'),
    arch: s.arch,
    dataset: DEFAULTS.dataset,
    size: s.size,
    localSize: s.localSize,
    localCrops: s.localCrops,
    localCropsUsed: s.localCrops,
    batchSize: s.batch,
    outDim: s.outDim,
    views: 2,
    select: 'random',
    limit: 0,
    knnEvery: 0,
  });
}

/** A whole DINO training step (views, student and teacher forwards, loss, backward, AdamW, EMA teacher). */
function dinoStepCase(s: DinoShape, reps: { warmup: number; reps: number }): BenchCase {
  return {
    name: `dino step ${s.label}`,
    shape: `2x${s.size}px + ${s.localCrops}x${s.localSize}px, batch ${s.batch}, K ${s.outDim}`,
    quick: false,
    extended: true,
    images: s.batch,
    reps,
    ours: async (ctx: BenchContext): Promise<OursTiming> => {
      const config = dinoConfig(s);
      const net: StepNet = { label: s.label, arch: s.arch, widths: [], size: s.size, channels: 3, batch: s.batch, dim: 0, predDim: 0 };
      const times: StepTimes = { views: 0, selectionForward: 0, select: 0, train: 0 };
      const me = await measure(ctx.engine, net, config, ctx.time, times);
      const total = times.views + times.selectionForward + times.select + times.train;
      return { ...me.timing, peakBytes: me.peakBytes, figures: { frac_views: times.views / total, frac_train: times.train / total, params: me.params } };
    },
  };
}

/** The step cases of the kit: full size, or the quick shapes. */
export function kitStepCases(quick: boolean): BenchCase[] {
  const net = quick ? R50_QUICK : R50;
  // Quick runs prove the steps run; their one step includes compiling the pipelines.
  const reps = quick ? { warmup: 0, reps: 1 } : { warmup: 1, reps: 3 };
  // Selecting at half resolution compiles a second set of pipelines on a CPU adapter: full runs only.
  const grid: [number, number][] = quick ? [[2, 0], [4, 0]] : [[2, 0], [4, 0], [4, net.size / 2]];
  const steps = grid.map(([v, r]) => hvpStepCase(net, v, r, false));
  return [...steps.map((c) => ({ ...c, extended: true, reps })), dinoStepCase(quick ? VITS_DINO_QUICK : VITS_DINO, reps)];
}

/** The demo network's random and V = 4 HVP steps (bench/cases/hvp-step.ts's own cases, by name). */
const DEMO_STEPS = [`random step ${NARROW.label}`, `hvp step ${NARROW.label}`];

/**
 * What `hvp bench --kit` runs, in order, from the bench's whole list `all`: the kernel cases of every
 * family (the quick subset with `quick`), the loader cases, the demo steps, then the kit's own steps.
 */
export function kitSelection(all: BenchCase[], quick: boolean): BenchCase[] {
  const kernels = all.filter((c) => KERNEL_FAMILIES.some((f) => c.name.startsWith(f)) && !c.extended && (!quick || c.quick));
  const loader = all.filter((c) => c.name.includes('loader') && (!quick || c.quick));
  const demo = all.filter((c) => DEMO_STEPS.includes(c.name) && /^V=[24], batch/.test(c.shape));
  return [...kernels, ...loader, ...demo, ...kitStepCases(quick)];
}
