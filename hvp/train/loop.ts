// The pretraining loop: epochs of HVP steps over a seeded, resumable loader; JSON-lines logs and the
// configuration next to the run; an atomic checkpoint every epoch, every --save-every steps and when
// SIGINT or SIGTERM stops the run (stop.ts); exact resume from any step; a
// NaN/Inf loss or selection score stops the run naming the step, leaving the last good checkpoint in place.

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { DeviceLostError, Engine, nn, Rng, type Tensor } from '../../engine/index.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint } from '../../models/checkpoint.js';
import { Progress } from '../progress.js';
import { BatchLoader, firstN, openDataset, subset } from '../data/index.js';
import type { Dataset } from '../data/types.js';
import { createMethod } from '../methods/index.js';
import type { Method } from '../methods/method.js';
import { kebabKey, resumeConflicts, storedConfig, RESUME_MUTABLE, type TrainConfig } from './config.js';
import { hvpStep, isLoggedStep, isTimedStep, zeroTimes, type StepResult, type StepTimes } from './hvp-step.js';
import { KnnMonitor, type KnnSets } from './knn-monitor.js';
import { JsonLog } from './log.js';
import { StopRequest, type StopSignal } from './stop.js';
import { shardRange, type DataParallel } from '../distributed/data-parallel.js';

/** Engine, data set and progress output of a pretraining run. */
export interface PretrainOptions {
  engine?: Engine;
  /** Dataset to train on instead of opening `config.data` (tests, the demo's subsets). */
  dataset?: Dataset;
  /** Print progress (default true). */
  progress?: boolean;
  /** Stop (with a checkpoint) after this many steps of this invocation, as Ctrl-C would. */
  stopAfter?: number;
  /**
   * Where stop requests come from (default: a StopRequest listening for SIGINT and SIGTERM while the
   * loop runs). A caller that passes its own also listens and closes it itself.
   */
  stopRequest?: StopRequest;
  times?: StepTimes;
  /** Wrap the method the run builds (instrumentation; tests inject faults through it). */
  wrapMethod?: (m: Method) => Method;
  /** The k-NN monitor's bank and queries (default: the first --knn-bank train and --knn-queries test images of the configured data). */
  knnSets?: KnnSets;
  /**
   * A data-parallel run (hvp/distributed): this process is one rank. `--batch-size` stays the global
   * batch; this rank trains on its contiguous share, and only rank 0 writes the run directory.
   */
  distributed?: DataParallel | null;
}

/** What a pretraining run returns: method, steps, losses, checkpoint, throughput. */
export interface PretrainResult {
  /**
   * The trained method, its model and optimizer still on the GPU for the caller (evaluation, export).
   * On an engine that lives on for further runs, release it with disposeMethod when done.
   */
  method: Method;
  engine: Engine;
  steps: number;
  /** Loss of every step of this invocation, in order. */
  losses: number[];
  checkpoint: string;
  /** The run stopped before its last step (a signal, or `stopAfter`), with a checkpoint of the step reached. */
  interrupted: boolean;
  /** The signal that stopped the run, if one did: the CLI exits with 130 (SIGINT) or 143 (SIGTERM). */
  signal: StopSignal | null;
  /** Steps done in all, the checkpoint's step. */
  step: number;
  imagesPerSecond: number;
}

/** File name of a run's checkpoint in its output directory. */
export const CHECKPOINT = 'checkpoint.safetensors';

/** The training images of a run: `given` or the configured dataset, cut to its first `trainLimit` images. */
export async function trainDataset(config: TrainConfig, given?: Dataset): Promise<Dataset> {
  const ds = given ?? (await openDataset({ kind: config.dataset, dir: config.data || undefined, split: 'train', loadSize: config.loadSize }));
  return config.trainLimit > 0 && config.trainLimit < ds.length ? subset(ds, firstN(ds, config.trainLimit)) : ds;
}

/** Refuse to resume `config` from a checkpoint whose stored configuration differs outside RESUME_MUTABLE. */
export async function checkResumable(path: string, config: TrainConfig): Promise<void> {
  const meta = await readCheckpointMeta(path);
  const conflicts = resumeConflicts(storedConfig(meta.config, path), config);
  if (conflicts.length) {
    throw new Error(`--resume: ${conflicts.join('; ')} (${path}; only --${RESUME_MUTABLE.filter((k) => k !== 'resume').map((k) => kebabKey(k)).join(', --')} may change on resume)`);
  }
}

/** The error that ends a run whose GPU device was lost at `step`: where, why, and what to resume from. */
async function deviceLost(cause: unknown, step: number, stepsPerEpoch: number, ckptPath: string): Promise<Error> {
  const why =
    cause instanceof DeviceLostError
      ? `during ${cause.during} (Dawn: ${cause.reason}${cause.dawnMessage ? `, "${cause.dawnMessage}"` : ''})`
      : `(${cause instanceof Error ? cause.message : String(cause)})`;
  let last = 'no checkpoint was saved yet, so the run starts over';
  if (existsSync(ckptPath)) {
    last = await readCheckpointMeta(ckptPath).then(
      (m) => `the last checkpoint, ${ckptPath}, is from step ${m.step}: resume with --resume`,
      (e: unknown) => `the checkpoint ${ckptPath} cannot be read (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  const where = `step ${step} (epoch ${Math.floor(step / stepsPerEpoch)}, batch ${step % stepsPerEpoch})`;
  return new Error(`the GPU device was lost at ${where} ${why}; ${last}`, { cause });
}


/** Pretrain with HVP as `config` says: logs, a checkpoint every epoch, resume, NaN checks. */
export async function pretrain(config: TrainConfig, opts: PretrainOptions = {}): Promise<PretrainResult> {
  // Listen from the start, so that a signal during setup also ends in a checkpoint after the first step.
  const stopRequest = opts.stopRequest ?? new StopRequest().listen();
  try {
    return await run(config, opts, stopRequest);
  } finally {
    if (!opts.stopRequest) stopRequest.close();
  }
}

async function run(config: TrainConfig, opts: PretrainOptions, stopRequest: StopRequest): Promise<PretrainResult> {
  const engine = opts.engine ?? (await Engine.create());
  const dp = opts.distributed ?? null;
  // Rank 0 alone writes the run directory (config, log, checkpoints, the k-NN monitor).
  const root = !dp || dp.isRoot;
  const shard = dp ? shardRange(config.batchSize, dp.rank, dp.world) : undefined;
  if (dp) dp.checkDevices(engine.description, config.allowSharedDevice);
  const dataset = await trainDataset(config, opts.dataset);
  if (dataset.length < config.batchSize) {
    throw new Error(`${dataset.name} has ${dataset.length} images, fewer than one batch of ${config.batchSize}: lower --batch-size`);
  }
  // Unreadable images are skipped (the loader refills the batch) and counted in the log.
  let log: JsonLog | null = null;
  const loader = new BatchLoader(dataset, {
    batchSize: config.batchSize,
    shuffle: true,
    seed: config.seed,
    dropLast: true,
    onSkip: (index, error) => log?.write({ event: 'skipped', index, error: error instanceof Error ? error.message : String(error), skipped: loader.skipped }),
  });
  const stepsPerEpoch = loader.batchesPerEpoch;
  const totalSteps = config.maxSteps > 0 ? Math.min(config.maxSteps, config.epochs * stepsPerEpoch) : config.epochs * stepsPerEpoch;
  const ckptPath = join(config.out, CHECKPOINT);
  if (config.resume) {
    if (!existsSync(ckptPath)) throw new Error(`--resume: no checkpoint at ${ckptPath} (start without --resume, or point --out at the run)`);
    await checkResumable(ckptPath, config);
    const saved = Number((await readCheckpointMeta(ckptPath)).world_size ?? 1);
    const world = dp?.world ?? 1;
    if (saved !== world) {
      throw new Error(`--resume: the checkpoint was written by a run on ${saved} rank${saved === 1 ? '' : 's'}, this run has ${world}; resume with mpirun -np ${saved}${saved === 1 ? ' or without mpirun' : ''}`);
    }
  }
  const built = createMethod({ engine, config, channels: dataset.channels, stepsPerEpoch, totalSteps, rng: new Rng(config.seed), sync: dp ?? undefined });
  const method = opts.wrapMethod ? opts.wrapMethod(built) : built;
  if (root) await mkdir(config.out, { recursive: true });

  let start = 0;
  if (config.resume) start = (await loadCheckpoint(ckptPath, { model: method.model, optimizer: method.optimizer })).meta.step;
  // Every rank starts from rank 0's weights and buffers (a resumed run's ranks all read the same checkpoint).
  if (dp) await dp.broadcast([...method.model.parameters(), ...method.model.namedBuffers().map(([, t]) => t)]);
  if (root) await writeFile(join(config.out, 'config.yaml'), toYaml(Object.fromEntries(Object.entries(config).map(([k, v]) => [kebabKey(k, '_'), v]))));
  log = root ? new JsonLog(join(config.out, 'log.jsonl'), config.resume) : null;
  const runLog = log;
  // Each gradient bucket is read back as soon as the step's last backward completes it.
  const beforeLastBackward = dp ? () => dp.armGradientReads(method.model.parameters()) : undefined;
  // Synchronised batch norm wherever the model has batch norm (the ResNets and their heads), as the
  // reference converts the whole model; eval mode (the k-NN monitor, evaluation) keeps the running statistics.
  const syncBn = !!dp && config.syncBn && nn.setSyncBatchNorm(method.model, dp) > 0;
  if (dp && runLog) runLog.write({ event: 'distributed', step: start, world_size: dp.world, rank_batch: config.batchSize / dp.world, sync_bn: syncBn });
  const monitor = root && config.knnEvery > 0 ? await KnnMonitor.create(engine, config, dataset, opts.knnSets) : null;

  const save = async (step: number) => {
    if (root) {
      await saveCheckpoint(ckptPath, {
        model: method.model,
        optimizer: method.optimizer,
        meta: { arch: config.arch, method: config.method, epoch: Math.floor(step / stepsPerEpoch), step, config, dataset: dataset.name, ...(dp ? { world_size: dp.world } : {}) },
      });
    }
    // Every rank saves at the same steps: none goes on (or exits) before rank 0's checkpoint is in place.
    dp?.barrier();
  };
  let interrupted = false;
  let stoppedBy: StopSignal | null = null;
  const progress = opts.progress === false || !root ? null : new Progress(`${config.method}${config.select === 'random' ? '' : ' hvp'}`, totalSteps);
  const losses: number[] = [];
  let pending: { step: number; result: StepResult; times?: StepTimes } | null = null;
  let step = start;
  const t0 = performance.now();
  // Time spent in the k-NN monitor, left out of the throughput.
  let monitorMs = 0;
  // Steps that timed their phases (a GPU wait after each), left out of the throughput with their images.
  const timedSteps: { step: number; ms: number }[] = [];
  /** Images per second over steps start .. last, without the timed ones (with them when every step was timed). */
  const throughput = (last: number) => {
    const timed = timedSteps.filter((t) => t.step <= last);
    const steps = last + 1 - start;
    const ms = performance.now() - t0 - monitorMs;
    const timedMs = timed.reduce((a, t) => a + t.ms, 0);
    return steps > timed.length ? ((steps - timed.length) * config.batchSize) / ((ms - timedMs) / 1000) : (steps * config.batchSize) / (ms / 1000);
  };
  const monitorAt = async (at: number) => {
    const m0 = performance.now();
    await monitor!.run(method, at, runLog!);
    monitorMs += performance.now() - m0;
  };

  // The loss of step s is read while step s + 1 runs, so the GPU never waits for the CPU.
  const diverged = (what: string, step: number) =>
    new Error(
      `${what} at step ${step} (epoch ${Math.floor(step / stepsPerEpoch)}); stopped. ` +
        `The last good checkpoint is ${existsSync(ckptPath) ? ckptPath : 'absent (none was saved yet)'}; try a lower --lr or --clip-grad`,
    );
  const settle = async (p: { step: number; result: StepResult; times?: StepTimes }) => {
    // One readback per step, a step late: the loss, the score sum and what a logged step's record holds.
    const r = p.result;
    const logged = isLoggedStep(config, p.step, totalSteps);
    const parts = [r.loss, r.scoreSum, ...(logged ? [r.choice, r.score, r.sampleScores] : [])];
    const arrays = await engine.readAll(parts.filter((t): t is Tensor => t !== null));
    let next = 0;
    const [lossA, sumA, choiceA, scoreA, samplesA] = parts.map((t) => (t ? arrays[next++] : null));
    // A rank's loss is the mean over its share; the run's loss is the mean over the ranks.
    const loss = dp ? dp.sum(Float64Array.of(lossA![0]))[0] / dp.world : lossA![0];
    if (!Number.isFinite(loss)) throw diverged(`loss became ${loss}`, p.step);
    const sum = sumA ? sumA[0] : 0;
    if (!Number.isFinite(sum)) throw diverged(`a selection score became ${sum} (NaN or infinite)`, p.step);
    losses.push(loss);
    const ips = throughput(p.step);
    if (logged && runLog) {
      const read = { choice: choiceA as Int32Array, score: scoreA as Float32Array | null, sampleScores: samplesA as Float32Array | null };
      runLog.step(p.step, loss, r, read, ips, p.times, sum);
    }
    progress?.update(p.step + 1 - start, `loss ${loss.toFixed(4)} · ${ips.toFixed(1)} img/s`);
    for (const t of [p.result.loss, p.result.choice, p.result.score, p.result.scoreSum, p.result.sampleScores]) t?.dispose();
  };
  const flush = async () => {
    if (pending) await settle(pending);
    pending = null;
  };
  // The step the loop is working on, for an error that stops it (the step counter has moved on by the
  // time a step's checkpoint is written).
  let at = start;

  try {
    // The curve starts at the initial weights; a resumed run's first point was logged before it stopped.
    if (monitor && start === 0) await monitorAt(0);
    outer: for (let epoch = Math.floor(start / stepsPerEpoch); step < totalSteps; epoch++) {
      for await (const batch of loader.epochBatches(epoch, step % stepsPerEpoch)) {
        const ctx = { step, epoch, totalSteps };
        at = step;
        // Logged steps at multiples of --time-every record their phases' times: a GPU sync after each
        // (and one before, so the previous step's work is not counted); images/s leaves them out.
        const timed = isTimedStep(config, step, totalSteps);
        const times = timed || opts.times ? zeroTimes() : undefined;
        const s0 = performance.now();
        if (times) await engine.sync();
        const result = await engine.scopeAsync(async () => {
          const r = await hvpStep({ engine, method, config, mean: dataset.mean, std: dataset.std, times, shard, beforeLastBackward }, batch, ctx);
          for (const t of [r.loss, r.choice, r.score, r.scoreSum, r.sampleScores]) if (t) engine.keep(t);
          return r;
        });
        if (timed && !opts.times) timedSteps.push({ step, ms: performance.now() - s0 });
        if (opts.times && times) for (const k of Object.keys(opts.times) as (keyof StepTimes)[]) opts.times[k] = (opts.times[k] ?? 0) + (times[k] ?? 0);
        if (pending) await settle(pending);
        pending = { step, result, times: timed ? times : undefined };
        step++;
        // Every rank settles at the same steps (settling is a collective in a data-parallel run); rank 0 alone runs the monitor.
        if (config.knnEvery > 0 && (step % config.knnEvery === 0 || step === totalSteps)) {
          await flush();
          if (monitor) await monitorAt(step);
        }
        let signal = await stopRequest.atStepBoundary();
        let stop = signal !== null || (opts.stopAfter !== undefined && step - start >= opts.stopAfter);
        // Every rank stops at the same step when any rank was asked to (a collective would wait forever
        // otherwise), and reports the same signal.
        if (dp) ({ signal, stop } = dp.agreeStop(signal, stop));
        if (step >= totalSteps || stop) {
          await flush();
          await save(step);
          if (stop && step < totalSteps) {
            interrupted = true;
            stoppedBy = signal;
            break outer;
          }
          break;
        }
        if (step % stepsPerEpoch === 0) {
          await flush();
          await save(step);
          break;
        }
        if (config.saveEvery > 0 && step % config.saveEvery === 0) {
          await flush();
          await save(step);
        }
      }
    }
  } catch (e) {
    // A lost device fails whatever touched it next; the run cannot go on, but its checkpoint can.
    if (e instanceof DeviceLostError || engine.backend.isLost) throw await deviceLost(e, at, stepsPerEpoch, ckptPath);
    throw e;
  } finally {
    progress?.done();
    if (root && loader.skipped > 0) console.warn(`${loader.skipped} unreadable images of ${dataset.name} were skipped (listed in ${runLog!.path})`);
    await runLog?.close();
  }
  const imagesPerSecond = throughput(step - 1);
  return {
    method,
    engine,
    steps: step - start,
    losses,
    checkpoint: ckptPath,
    interrupted,
    signal: stoppedBy,
    step,
    imagesPerSecond,
  };
}
