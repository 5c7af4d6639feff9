// `npm run bench` / `hvp bench`: kernel throughput against a peer on the same adapter.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/index.js';
import type { BenchCase, BenchContext, BenchRecord } from './case.js';
import { ALL } from './cases/index.js';
import { kitSelection } from './cases/kit.js';
import { createTfjsPeer, type TfjsPeer } from './peers/tfjs.js';
import { createTorchPeer, type TorchPeer } from './peers/torch.js';
import { createLoaderPeer, type LoaderPeer } from './peers/torch-loader.js';
import { interleave, roundsRecord } from './rounds.js';
import type { GpuClock } from './timing.js';
import { addOfPeak, markdownTable, progressLine } from './report.js';


const HELP = `Usage: hvp bench [options]

Times our WGSL kernels and the same work in @tensorflow/tfjs-backend-webgpu on the same WebGPU
adapter (submit, await onSubmittedWorkDone, median of --reps runs after --warmup runs). Where both
devices have timestamp-query, the times are GPU time between timestamps written just before and
just after each run; each record says which method gave its times (\`timing\`). Memory-bound cases
report GB/s and the fraction of the run's copy bandwidth, compute-bound ones GFLOP/s and the
fraction of the run's best matmul (\`of_peak\`).

Options:
  --quick          run the quick subset
  --all            also run the extended cases (whole ResNet/ViT training steps, the largest scoring loops)
  --filter TEXT    only cases whose name and shape contain TEXT (e.g. 'conv2d fwd', 'demo stem', 'loader')
  --json FILE      also write the records as JSON
  --reps N         timed repetitions per case, per round (default 5; whole training steps: 2-3)
  --warmup N       untimed runs before timing (default 2; cases whose run takes seconds: 1)
  --rounds N       cases with a peer: N rounds of ours then the peer's (each --warmup and --reps),
                   alternating; the ratio is the median of the rounds' ratios, with its min-max
                   (default 3)
  --no-peer        skip the peers (tfjs; PyTorch for training steps; torchvision's DataLoader for the
                   loader case)
  --kit            the GPU kit's selection: kernel cases of every family, the loader, the demo steps and
                   whole ResNet-50 SimSiam / ViT-S/16 DINO steps at batch 64 (tiny shapes with --quick);
                   no tfjs peer
  --torch-device D where the PyTorch peer of training steps runs: cpu (default) or cuda (fp32, then
                   autocast bf16, cudnn.benchmark on)
  --budget SECONDS start no case after this many seconds; the cases left are listed as skipped
  --profile CASE   instead of timing, profile one run of CASE kernel by kernel (hvp profile --case CASE;
                   --trace FILE and --wall as there)
  -h, --help       show this help`;

export async function benchMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      filter: { type: 'string' },
      json: { type: 'string' },
      reps: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      'no-peer': { type: 'boolean', default: false },
      kit: { type: 'boolean', default: false },
      'torch-device': { type: 'string', default: 'cpu' },
      budget: { type: 'string' },
      profile: { type: 'string' },
      trace: { type: 'string' },
      wall: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (values.profile !== undefined) {
    const { profileMain } = await import('./profile.js');
    const extra = [...(values.trace ? ['--trace', values.trace] : []), ...(values.wall ? ['--wall'] : [])];
    return profileMain(['--case', values.profile, ...extra]);
  }
  const reps = Number(values.reps);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got ${values.reps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be a non-negative integer, got ${values.warmup}`);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
  const device = values['torch-device'];
  if (device !== 'cpu' && device !== 'cuda') throw new Error(`--torch-device must be cpu or cuda, got '${device}'`);
  const budget = values.budget === undefined ? Infinity : Number(values.budget);
  if (!(budget >= 0)) throw new Error(`--budget must be a number of seconds >= 0, got '${values.budget}'`);
  const t0 = performance.now();

  const engine = await Engine.create();
  const tfjs = values['no-peer'] || values.kit ? null : await createTfjsPeer(engine.backend.gpu);
  const pool = values.kit ? kitSelection(ALL, values.quick) : ALL.filter((c) => (!values.quick || c.quick) && (values.all || !c.extended));
  const cases = pool.filter((c) => !values.filter || `${c.name} ${c.shape}`.includes(values.filter));
  console.log(`adapter: ${engine.description}`);
  const found = values['no-peer'] || !cases.some((c) => c.torch) ? null : await createTorchPeer({ device });
  if (found && 'reason' in found) console.log(`torch peer skipped: ${found.reason}`);
  const torch = found && 'step' in found ? found : null;
  if (torch) console.log(`torch peer: ${torch.python}, torch ${torch.version}, ${torch.device === 'cuda' ? torch.deviceName : `${torch.threads} threads on the CPU`}`);
  const wantsTorchvision = !values['no-peer'] && cases.some((c) => c.peer?.needs === 'torchvision');
  const foundTv = wantsTorchvision ? await createLoaderPeer() : null;
  if (foundTv && 'reason' in foundTv) console.log(`torchvision peer skipped: ${foundTv.reason}`);
  const torchvision = foundTv && 'epochs' in foundTv ? foundTv : null;
  if (torchvision) console.log(`torchvision peer: ${torchvision.python}, torchvision ${torchvision.version}`);
  // Rewritten after every case, so a run stopped from outside keeps what it measured.
  const write = (records: BenchRecord[], skipped: string[]) => {
    if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: engine.description, torch_peer: found && 'reason' in found ? { skipped: found.reason } : torch && { version: torch.version, device: torch.device, name: torch.deviceName }, records, skipped }, null, 2) + '\n');
  };
  const records: BenchRecord[] = [];
  const deadline = t0 + budget * 1000;
  const skipped = await runCasesUntil(engine, tfjs, cases, { reps, warmup, rounds }, (r) => {
    console.log(progressLine(r));
    records.push(r);
    write(records, []);
  }, torch, { torchvision }, deadline);
  addOfPeak(records);
  if (skipped.length) console.log(`budget of ${budget} s spent: ${skipped.length} cases skipped (${skipped.join('; ')})`);
  write(records, skipped);
  console.log(`\n${markdownTable(records)}\n\n${records.length} cases in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (values.json) console.log(`wrote ${values.json}`);
  engine.destroy();
}

/** Our engine's timestamp clock, when its device has `timestamp-query`. */
export function engineClock(engine: Engine): GpuClock | null {
  const b = engine.backend;
  return b.features.has('timestamp-query')
    ? { device: b.device, flush: () => b.flush(), submits: () => b.counters.submits }
    : null;
}

/**
 * Run the cases in order, one record each, with of_peak filled in at the end. A case with a peer
 * present (its `peer`, or PyTorch inside a `torch` case's own run) is timed in `time.rounds` rounds
 * (default 1) of ours then the peer's; a case without one, once.
 */
export async function runCases(
  engine: Engine,
  tfjs: TfjsPeer | null,
  cases: BenchCase[],
  time: { reps: number; warmup: number; rounds?: number },
  onRecord: (r: BenchRecord) => void = () => {},
  torch: TorchPeer | null = null,
  peers: { torchvision?: LoaderPeer | null } = {},
): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  await runCasesUntil(engine, tfjs, cases, time, (r) => {
    records.push(r);
    onRecord(r);
  }, torch, peers, Infinity);
  addOfPeak(records);
  return records;
}

/**
 * Run the cases in order as runCases does, starting none after `deadline` (a performance.now() time);
 * returns the names of the cases skipped for it. of_peak is left to the caller.
 */
async function runCasesUntil(
  engine: Engine,
  tfjs: TfjsPeer | null,
  cases: BenchCase[],
  time: { reps: number; warmup: number; rounds?: number },
  onRecord: (r: BenchRecord) => void,
  torch: TorchPeer | null,
  peers: { torchvision?: LoaderPeer | null },
  deadline: number,
): Promise<string[]> {
  const torchvision = peers.torchvision ?? null;
  for (const [i, c] of cases.entries()) {
    if (performance.now() > deadline) return cases.slice(i).map((s) => `${s.name} ${s.shape}`);
    const reps = { warmup: time.warmup, reps: time.reps, ...c.reps };
    const ctx: BenchContext = { engine, tfjs, torch, torchvision, time: { ...reps, clock: engineClock(engine) } };
    const needs = c.peer?.needs ?? 'tfjs';
    const present = needs === 'torchvision' ? torchvision !== null : tfjs !== null;
    const peerClock = needs === 'tfjs' ? (tfjs?.clock ?? null) : null;
    const peer = c.peer && present ? () => c.peer!.run({ ...ctx, time: { ...reps, clock: peerClock } }) : null;
    const rounds = peer || (c.torch && torch) ? (time.rounds ?? 1) : 1;
    onRecord(roundsRecord(c, await interleave(rounds, () => c.ours(ctx), peer)));
  }
  return [];
}
