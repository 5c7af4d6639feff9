// `hvp pretrain`: self-supervised pretraining with or without Hard View Pretraining, from a preset
// (YAML) with every setting overridable by a flag.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readCheckpointMeta } from '../models/checkpoint.js';
import {
  applyValues,
  camelKey,
  coerce,
  DEFAULTS,
  kebabKey,
  parsePresetText,
  presetConfig,
  PRESETS,
  RESUME_MUTABLE,
  storedConfig,
  validateConfig,
  type TrainConfig,
} from '../hvp/train/config.js';
import { checkResumable, CHECKPOINT, pretrain } from '../hvp/train/loop.js';
import { signalExitCode, StopRequest, stoppedMessage } from '../hvp/train/stop.js';
import { DataParallel } from '../hvp/distributed/data-parallel.js';

export const PRETRAIN_HELP = `Usage: hvp pretrain [--preset NAME | --config FILE.yaml] [--setting value ...]

Pretrains a backbone with SimSiam, SimCLR, DINO or iBOT. With --select hardest (the default) every
step draws --views augmented views per image, scores every combination with the method's own loss
in a gradient-free forward and trains on each sample's hardest one (HVP); --select random --views 2
is plain SSL training. Writes OUT/config.yaml, OUT/log.jsonl (JSON lines) and
OUT/checkpoint.safetensors (every epoch, every --save-every steps, and when SIGINT or SIGTERM
stops the run); --resume continues a run exactly, from any step.

SIGINT (Ctrl-C) or SIGTERM (what Slurm and Kubernetes send before they kill a job) stops the run at
the end of the current step, writes the checkpoint of that step and exits with 130 or 143, so that
\`hvp pretrain ... && hvp eval ...\` never evaluates a half-trained model.

Presets: ${Object.keys(PRESETS).join(', ')} (default simsiam-fashion-mnist)

Main settings (every setting below is a flag; YAML files use snake_case keys):
  --method simsiam|simclr|dino|ibot     --arch resnet18|resnet34|resnet50|vit_tiny|vit_small|vit_base
  --widths 8,16,32,64   ResNet stage widths     --small-image true|false   3x3 stem, no max-pool
  --data DIR            dataset directory (default: Debian's Fashion-MNIST)
  --dataset auto|fashion-mnist|mnist|cifar10|folder       --train-limit N   first N images only
  --epochs N  --max-steps N  --batch-size N  --seed N  --lr X  --weight-decay X
  --max-steps N         the run is N steps long (when fewer than --epochs give; 0 = no limit): every
                        method's schedules (lr, warm-up, weight decay, teacher momentum) end at its last step
  --optimizer sgd|adamw|lars
                        lars (convnets at large batch): SGD momentum, each weight's step scaled by
                        --lars-eta * ||w|| / ||g + wd*w||; biases and norm weights: plain SGD, no decay
  --grad-accum-steps K  split each batch into K micro-batches of batch-size/K (forward and backward
                        each), one optimizer step on their averaged gradients; batch norm and SimCLR's
                        negatives work per micro-batch (see docs/method.md)
  --select hardest|easiest|random   --views V   --limit K (score K drawn combinations; 0 = all)
  --select-res R        score the candidate views rendered at R px, train at --size (DINO's local
                        crops are scored as rendered; not for iBOT, whose masks are drawn for --size)
  --select-layer L      score by feature similarity after stage L (stem, layer1..layer4; ViT block)
  --anchor              view 0 fixed, only its partner is chosen
  --size S  --scale-min X  --scale-max X  --local-crops L  --local-crops-used n  --local-size S
  --out DIR             run directory (default runs/pretrain)     --resume   continue OUT's checkpoint
  --save-every N        also write the checkpoint every N steps (atomically; 0 = epoch ends only)
  --log-every N         log selections and view parameters every N steps
  --time-every N        logged steps at multiples of N also record their phases' times (a GPU wait
                        after each phase, left out of images/s; default 100, 0 = never)
  --log-samples K       also log every combination's score for the first K samples of a logged step
  --knn-every N         k-NN monitor: top-1 every N steps on the first --knn-bank train and
                        --knn-queries test images (0 = off); see hvp report RUN

Data-parallel training: mpirun -np N hvp pretrain ... (or srun) trains one model on N processes, one
per GPU. --batch-size stays the global batch (each rank takes batch / N, which must be whole); rank 0's
weights are copied to every rank at start, gradients are averaged once per step (after the last
micro-batch with --grad-accum-steps), and only rank 0 writes OUT. Batch norm takes its statistics over
the global batch (synchronised, in training and in HVP's selection forward) unless --sync-bn false;
SimCLR's negatives are each rank's own share. SIGINT/SIGTERM to any rank stops every rank at the same
step (rank 0 saves; all exit 130/143). --resume needs the N the run was started with.
  --sync-bn true|false         synchronised batch norm across ranks (default true; no effect on one
                               process or a model without batch norm)
  --allow-shared-device true   run even where two ranks opened the same GPU (CPU adapters, tests)

--resume continues with the configuration stored in the checkpoint (not a preset, --config or
OUT/config.yaml); only ${RESUME_MUTABLE.filter((k) => k !== 'resume').map((k) => `--${kebabKey(k)}`).join(', ')} may change, and any
other flag must repeat the stored value.

All settings and their defaults:
${Object.entries(DEFAULTS)
  .map(([k, v]) => `  --${kebabKey(k)} ${Array.isArray(v) ? v.join(',') || '(none)' : v === '' ? '(none)' : v}`)
  .join('\n')}`;

/** Split argv into --key value pairs (a flag followed by another flag or nothing is boolean true). */
export function flagValues(argv: string[]): { values: Record<string, string>; preset?: string; config?: string; help: boolean } {
  const values: Record<string, string> = {};
  let preset: string | undefined;
  let config: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument '${arg}' (settings are --name value; see hvp pretrain --help)`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    else value = 'true';
    if (name === 'preset') preset = value;
    else if (name === 'config') config = value;
    else values[name] = value;
  }
  return { values, preset, config, help };
}

export async function resolveConfig(argv: string[]): Promise<TrainConfig | null> {
  const { values, preset, config, help } = flagValues(argv);
  if (help) return null;
  if (preset && config) throw new Error('pass either --preset or --config, not both');
  const resume = Object.entries(values).some(([k, v]) => camelKey(k) === 'resume' && coerce('resume', v, 'flag') === true);
  if (resume) return resumeConfig(values, preset ?? config);
  let base = presetConfig(preset ?? 'simsiam-fashion-mnist');
  if (config) base = applyValues(DEFAULTS, parsePresetText(await readFile(config, 'utf8'), config), config);
  return validateConfig(applyValues(base, values, 'flag'));
}

/**
 * A resumed run's configuration: the one its checkpoint stores, never a preset or a fallback. Flags
 * outside RESUME_MUTABLE must agree with it; an unreadable checkpoint is an error.
 */
async function resumeConfig(values: Record<string, string>, source: string | undefined): Promise<TrainConfig> {
  if (source) throw new Error(`--resume continues with the configuration stored in the checkpoint; drop --preset/--config (${source})`);
  const out = Object.entries(values).find(([k]) => camelKey(k) === 'out')?.[1] ?? DEFAULTS.out;
  const path = join(out, CHECKPOINT);
  if (!existsSync(path)) throw new Error(`--resume: no checkpoint at ${path} (start without --resume, or point --out at the run)`);
  const saved = storedConfig((await readCheckpointMeta(path)).config, path);
  const c = validateConfig(applyValues(saved, { ...values, out, resume: 'true' }, 'flag'));
  await checkResumable(path, c);
  return c;
}

export async function pretrainMain(argv: string[]): Promise<void> {
  const config = await resolveConfig(argv);
  if (!config) return console.log(PRETRAIN_HELP);
  // Listening until the process exits: a second signal, however late, cannot cut the checkpoint, the
  // message or the exit status short (SIGKILL still can; the checkpoint is renamed into place whole).
  const stopRequest = new StopRequest().listen();
  // Launched by mpirun/srun with several ranks: this process is one of them (MPI is never loaded otherwise).
  const distributed = DataParallel.fromLauncher();
  const r = await pretrain(config, { stopRequest, distributed });
  if (distributed && !distributed.isRoot) {
    // Every rank stopped at the same step and exits with the same status; rank 0 wrote the checkpoint.
    if (r.signal) {
      console.error(`rank ${distributed.rank}: stopped by ${r.signal} at step ${r.step}`);
      process.exitCode = signalExitCode(r.signal);
    }
    return;
  }
  if (distributed) {
    const t = distributed.times;
    const per = (ms: number) => (ms / Math.max(1, t.steps)).toFixed(1);
    console.log(
      `${distributed.world} ranks; gradient averaging per step: ${per(t.readback + t.allreduce + t.upload)} ms ` +
        `(readback ${per(t.readback)}, all-reduce ${per(t.allreduce)}, upload ${per(t.upload)}) of ${(t.bytes / Math.max(1, t.steps) / 1e6).toFixed(2)} MB; ` +
        `${t.earlyBuckets} of ${t.buckets} buckets read back during the backward`,
    );
  }
  const last = r.losses.length ? r.losses[r.losses.length - 1].toFixed(4) : '-';
  console.log(
    `${r.interrupted ? 'interrupted' : 'finished'} after ${r.steps} steps (${r.imagesPerSecond.toFixed(1)} img/s); last loss ${last}; checkpoint ${r.checkpoint}`,
  );
  if (r.signal) {
    console.error(stoppedMessage(r.signal, r.step, r.checkpoint, config.out));
    // Set, not exit: the CLI's entry exits with it once the run has closed its files.
    process.exitCode = signalExitCode(r.signal);
  }
}
