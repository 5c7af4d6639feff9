// `hvp profile`: time every kernel dispatch of a workload (the demo network's random or HVP step,
// a preset's training step, or a bench case), print a table per kernel and write a Chrome trace.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { chromeTrace, Engine, formatKernelTable, kernelTable, Rng, type Profile } from '../engine/index.js';
import { createMethod } from '../hvp/methods/index.js';
import { presetConfig, validateConfig, type TrainConfig } from '../hvp/train/config.js';
import { hvpStep } from '../hvp/train/hvp-step.js';
import { disposeMethod, NARROW, stepConfig, syntheticBatch, type StepNet } from './cases/hvp-step.js';
import type { BenchCase } from './case.js';

export const PROFILE_HELP = `Usage: hvp profile [WORKLOAD] [options]

Runs a workload with every GPU dispatch timed and prints, per kernel: dispatches, total ms, share
of all kernel time, mean us, and GFLOP/s or GB/s where the op states its work. Dispatches are timed
by GPU timestamps written at the beginning and end of a compute pass of their own, where the adapter
has timestamp-query; otherwise (or with --wall) each recorded dispatch is replayed alone afterwards
and timed by the wall clock, less an empty submission's round trip. The output says which. Also
writes a Chrome trace-event JSON (one complete event per dispatch, with its workgroups and
defines) that chrome://tracing and ui.perfetto.dev open.

Workloads:
  hvp-step        the demo network's HVP step (default): SimSiam, ResNet-18 with widths 8/16/32/64,
                  1x28x28 synthetic images, --views candidate views, hardest pair
  random-step     the same network's plain training step on two random views
  --preset NAME   one training step of a built-in preset (its network, views and method), at --batch
  --case NAME     one run of a bench case (see hvp bench --help): its exact kind, or a unique part of
                  its kind and shape, e.g. 'fwd+bwd 64x1x28x28'

Options:
  --batch N       images per step (default 64)
  --views V       candidate views of hvp-step (default 4)
  --steps N       profiled steps (default 1)
  --warmup N      unprofiled steps first, which compile the pipelines and fill the pools (default 1)
  --trace FILE    Chrome trace output (default runs/profile/trace.json)
  --top N         kernels shown in the table (default 30)
  --wall          time by the wall-clock replay even where timestamps are available
  -h, --help      show this help`;

interface Workload {
  label: string;
  /** One step (or run); the engine is synced after it. */
  step: (i: number) => Promise<void>;
  dispose: () => void;
}

function posInt(name: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

function channelsOf(c: TrainConfig): number {
  return c.dataset === 'fashion-mnist' || c.dataset === 'mnist' ? 1 : 3;
}

/** Steps of hvpStep on synthetic uint8 images of the config's view size. */
function trainWorkload(engine: Engine, label: string, net: StepNet, config: TrainConfig): Workload {
  const rng = new Rng(11);
  const method = createMethod({ engine, config, channels: net.channels, stepsPerEpoch: 1000, totalSteps: 1000, rng });
  const batch = syntheticBatch(net, rng);
  const mean = new Array<number>(net.channels).fill(0.5);
  const std = new Array<number>(net.channels).fill(0.25);
  return {
    label,
    step: (i) =>
      engine.scopeAsync(async () => {
        await hvpStep({ engine, method, config, mean, std }, batch, { step: i, epoch: 0, totalSteps: 1000 });
      }),
    dispose: () => disposeMethod(method),
  };
}

function presetWorkload(engine: Engine, name: string, batch: number): Workload {
  const config = validateConfig({ ...presetConfig(name), batchSize: batch });
  const channels = channelsOf(config);
  const size = Math.max(config.size, config.loadSize || 0, channels === 1 ? 28 : 32);
  const net: StepNet = { label: name, arch: 'resnet18', widths: [], size, channels, batch, dim: config.dim, predDim: config.predDim };
  return trainWorkload(engine, `preset ${name}: ${config.method}, ${config.arch}, V=${config.views}, batch ${batch}, ${channels}x${size}x${size} synthetic images`, net, config);
}

async function benchWorkload(engine: Engine, name: string): Promise<Workload> {
  const { ALL } = await import('./cases/index.js');
  // A case is named by its kind and its shape ('conv2d fwd 64x8x28x28 k3 s1 -> 8 (demo layer1)'):
  // an exact kind, else any case whose kind or full name contains the text.
  const full = (c: BenchCase) => `${c.name} ${c.shape}`;
  const exact = ALL.filter((c: BenchCase) => c.name === name || full(c) === name);
  const found = exact.length === 1 ? exact : ALL.filter((c: BenchCase) => full(c).includes(name));
  if (found.length !== 1) {
    const names = (found.length ? found : ALL).map((c: BenchCase) => `  ${full(c)}`).join('\n');
    throw new Error(`--case '${name}' matches ${found.length} bench cases; pick one of:\n${names}`);
  }
  const c = found[0];
  return {
    label: `bench case '${c.name}' (${c.shape})`,
    step: async () => {
      await c.ours({ engine, tfjs: null, time: { warmup: 0, reps: 1, clock: null } });
    },
    dispose: () => {},
  };
}

export interface ProfileOptions {
  steps: number;
  warmup: number;
  wall: boolean;
  trace: string;
  top: number;
}

/** Warm up, profile `steps` steps, print the table and write the trace. */
export async function runProfile(engine: Engine, w: Workload, o: ProfileOptions): Promise<Profile> {
  console.log(`adapter: ${engine.description}\nworkload: ${w.label}`);
  for (let i = 0; i < o.warmup; i++) {
    await w.step(i);
    await engine.sync();
  }
  const t0 = performance.now();
  engine.backend.startProfile({ wall: o.wall });
  for (let i = 0; i < o.steps; i++) await w.step(o.warmup + i);
  const profile = await engine.backend.stopProfile();
  const wallMs = performance.now() - t0;
  w.dispose();
  console.log(`\n${o.steps} profiled step(s), ${wallMs.toFixed(0)} ms of wall time while profiling\n`);
  console.log(formatKernelTable(kernelTable(profile.records), profile.clock, o.top));
  await mkdir(dirname(o.trace), { recursive: true });
  await writeFile(o.trace, JSON.stringify(chromeTrace(profile, { adapter: engine.description, workload: w.label })));
  console.log(`\nwrote ${o.trace} (open it in chrome://tracing or ui.perfetto.dev)`);
  return profile;
}

export async function profileMain(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      preset: { type: 'string' },
      case: { type: 'string' },
      batch: { type: 'string', default: '64' },
      views: { type: 'string', default: '4' },
      steps: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '1' },
      trace: { type: 'string', default: 'runs/profile/trace.json' },
      top: { type: 'string', default: '30' },
      wall: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return console.log(PROFILE_HELP);
  if (positionals.length > 1) throw new Error(`profile takes one workload, got ${positionals.join(' ')}`);
  const named = positionals[0];
  const chosen = [named, values.preset, values.case].filter((v) => v !== undefined);
  if (chosen.length > 1) throw new Error('profile: give one workload (hvp-step, random-step, --preset NAME or --case NAME)');
  if (named && named !== 'hvp-step' && named !== 'random-step') {
    throw new Error(`profile: unknown workload '${named}' (hvp-step, random-step, --preset NAME or --case NAME)\n\n${PROFILE_HELP}`);
  }
  const batch = posInt('batch', values.batch, 2);
  const views = posInt('views', values.views, 2);
  const opts: ProfileOptions = {
    steps: posInt('steps', values.steps),
    warmup: posInt('warmup', values.warmup, 0),
    wall: values.wall!,
    trace: values.trace!,
    top: posInt('top', values.top),
  };
  if (values.preset !== undefined) presetConfig(values.preset); // unknown names fail before the device opens
  const engine = await Engine.create();
  try {
    let w: Workload;
    if (values.preset !== undefined) w = presetWorkload(engine, values.preset, batch);
    else if (values.case !== undefined) w = await benchWorkload(engine, values.case);
    else {
      const random = named === 'random-step';
      const net: StepNet = { ...NARROW, batch };
      const v = random ? 2 : views;
      w = trainWorkload(engine, `${random ? 'random' : 'HVP'} step, SimSiam, ResNet-18 ${net.widths.join('/')}, V=${v}, batch ${batch}, 1x28x28`, net, stepConfig(net, v, 0));
    }
    await runProfile(engine, w, opts);
  } finally {
    engine.destroy();
  }
}
