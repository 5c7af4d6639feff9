// Data-parallel training under `mpirun -np 2` on the built CLI: the MPI binding's collectives, a
// 2-rank run equal to the single-process run at the same global batch (only the order of the
// gradient sums differs), the errors of a wrong launch, and a rank killed mid-run ending the whole
// job non-zero with a loadable checkpoint. Skipped where Open MPI is absent (HVP_REQUIRE_MPI=1, set
// by CI, turns that skip into a failure).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buckets, shardRange } from '../hvp/distributed/data-parallel.js';
import { addonCandidates, launcherWorldSize, loadMpi } from '../hvp/distributed/mpi.js';
import { packBatch } from '../hvp/data/index.js';
import { sliceBatch } from '../hvp/train/micro-batch.js';
import { CHECKPOINT } from '../hvp/train/loop.js';
import { readCheckpointMeta } from '../models/checkpoint.js';
import { differingTensors, readRunState, runDir } from './train-helpers.js';

const root = new URL('..', import.meta.url).pathname;
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
const haveMpirun = spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status === 0;
const haveBinding = addonCandidates().some((p) => existsSync(p));
const ready = haveMpirun && haveBinding;
const why = !haveMpirun ? 'mpirun is absent (apt-get install libopenmpi-dev openmpi-bin)' : 'the MPI binding is not built (node scripts/build-mpi.mjs)';
if (!ready && process.env.HVP_REQUIRE_MPI === '1') throw new Error(`test/distributed.test.ts: HVP_REQUIRE_MPI=1 but ${why}`);
if (!ready) console.warn(`test/distributed.test.ts: skipping the mpirun tests: ${why}`);

const MPIRUN = ['--allow-run-as-root', '--oversubscribe', '-np', '2'];
type Run = { code: number | null; stdout: string; stderr: string };

function run(cmd: string, args: string[], watch?: (pid: number) => () => void, extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...env, ...extraEnv } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = watch?.(child.pid!);
    child.on('close', (code) => {
      done?.();
      resolve({ code, stdout, stderr });
    });
  });
}
const hvp = (args: string[]) => run(process.execPath, ['dist/hvp.js', ...args]);
const mpirunHvp = (args: string[], watch?: (pid: number) => () => void) => run('mpirun', [...MPIRUN, process.execPath, 'dist/hvp.js', ...args], watch);

/** Every tensor of two checkpoints (but those `skip` names) within |a - b| <= atol + rtol·|b|; returns the worst offenders. */
function compareStates(a: string, b: string, rtol: number, atol: number, skip = (_name: string) => false): { bad: string[]; worst: number } {
  const x = readRunState(a).tensors;
  const y = readRunState(b).tensors;
  expect([...x.keys()].sort()).toEqual([...y.keys()].sort());
  const bad: string[] = [];
  let worst = 0;
  for (const [name, bx] of x) {
    if (skip(name)) continue;
    const fa = new Float32Array(bx.buffer.slice(bx.byteOffset, bx.byteOffset + bx.byteLength));
    const by = y.get(name)!;
    const fb = new Float32Array(by.buffer.slice(by.byteOffset, by.byteOffset + by.byteLength));
    for (let i = 0; i < fa.length; i++) {
      const d = Math.abs(fa[i] - fb[i]);
      worst = Math.max(worst, d / (atol + rtol * Math.abs(fb[i])));
      if (!(d <= atol + rtol * Math.abs(fb[i]))) {
        bad.push(`${name}[${i}]: ${fa[i]} vs ${fb[i]}`);
        break;
      }
    }
  }
  return { bad, worst };
}

describe('data-parallel helpers', () => {
  it('the ranks\' shares of a batch are contiguous, cover it once, and a batch that does not divide is refused', () => {
    expect(shardRange(16, 0, 2)).toEqual([0, 8]);
    expect(shardRange(16, 1, 2)).toEqual([8, 16]);
    expect(() => shardRange(7, 0, 2)).toThrow(/--batch-size 7 .* 2 ranks/);
    const images = Array.from({ length: 5 }, (_, i) => ({ pixels: Uint8Array.from({ length: 3 * (i + 1) * 2 }, (_, k) => i * 10 + k), height: i + 1, width: 2, label: i }));
    const whole = packBatch(images, [10, 11, 12, 13, 14]);
    const parts = [sliceBatch(whole, 0, 2), sliceBatch(whole, 2, 3)];
    expect(Buffer.concat(parts.map((p) => Buffer.from(p.pixels)))).toEqual(Buffer.from(whole.pixels));
    expect(parts.flatMap((p) => [...p.indices])).toEqual([10, 11, 12, 13, 14]);
    expect(parts[1]).toEqual(packBatch(images.slice(2), [12, 13, 14]));
  });

  it('gradient buckets keep parameter order and stay under the byte limit unless one tensor exceeds it', () => {
    const t = (size: number) => ({ size }) as never;
    const ps = [t(10), t(10), t(30), t(5), t(5)];
    expect(buckets(ps, 100).map((b) => b.length)).toEqual([2, 1, 2]);
    expect(buckets(ps, 1000).map((b) => b.length)).toEqual([5]);
  });

  it('a launch with several ranks but no binding names the install commands', () => {
    expect(launcherWorldSize({ OMPI_COMM_WORLD_SIZE: '4' })).toBe(4);
    expect(launcherWorldSize({ SLURM_NTASKS: '2' })).toBe(2);
    expect(launcherWorldSize({})).toBe(1);
    expect(() => loadMpi(['/nonexistent/mpi.node'])).toThrow(/apt-get install libopenmpi-dev openmpi-bin.*npm run build:mpi/);
  });
});

describe.skipIf(!ready)('mpirun -np 2', () => {
  beforeAll(() => {
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root });
  });

  it('the binding: rank, size, broadcast, all-reduce (f32, f64), all-gather', async () => {
    const script = join(runDir(), 'collectives.cjs');
    writeFileSync(
      script,
      `const m = require(${JSON.stringify(join(root, 'build', 'mpi.node'))});
m.init();
const r = m.rank(), n = m.size();
const f = Float32Array.from([r + 1, 0.5 * r]); m.allreduceSum(f);
const d = Float64Array.from([1e-17 * (r + 1), r]); m.allreduceSum(d);
const b = Uint8Array.from([r === 0 ? 7 : 0, r === 0 ? 9 : 1]); m.broadcast(b, 0);
const g = new Int32Array(2 * n); m.allgather(Int32Array.from([r, 10 * r]), g);
console.log(JSON.stringify({ r, n, local: m.localRank(), f: [...f], d: [...d], b: [...b], g: [...g] }));
m.finalize();`,
    );
    const out = await run('mpirun', [...MPIRUN, process.execPath, script]);
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((a, b) => a.r - b.r);
    expect(lines.map((l) => l.r)).toEqual([0, 1]);
    for (const l of lines) {
      expect(l.n).toBe(2);
      expect(l.local).toBe(l.r);
      expect(l.f).toEqual([3, 0.5]);
      expect(l.d).toEqual([3e-17, 1]);
      expect(l.b).toEqual([7, 9]);
      expect(l.g).toEqual([0, 0, 1, 10]);
    }
  });

  // DINO on a ViT (layer norm only, so no batch statistics couple the samples): 3 steps of global
  // batch 16 with the hardest of 6 view pairs. The ranks sum their gradients in another order than
  // one process sums its batch, so the states agree to float32 rounding, not bit for bit. SGD keeps
  // that rounding where it is; AdamW's first steps move every weight by about ±lr whatever the size
  // of its gradient, so a gradient that is zero up to rounding (the two runs' signs differ) moves a
  // weight by 2·lr between them: AdamW runs agree in their losses, not element by element. With SGD
  // every tensor agrees within |a - b| <= 1e-6 + 1e-4·|b| (measured on the project's 2-core machine,
  // lavapipe: at most 4.8e-7 apart, 11.4M of 31.4M values not bit-equal).
  // iBOT adds patch masks (drawn for the global batch, each rank keeping its samples' rows) and a
  // second centre.
  // DINO with --grad-accum-steps 2 on each rank (2 micro-batches of 4 per rank): the gradients are
  // averaged once after the last micro-batch, and the centre moves by the ranks' averaged pending
  // teacher sums, so the run is still the single-process one at batch 16 without micro-batches.
  const METHODS: [string, string[], string[]][] = [
    ['DINO', ['--method', 'dino'], []],
    ['DINO, --grad-accum-steps 2 on each rank,', ['--method', 'dino'], ['--grad-accum-steps', '2']],
    ['iBOT', ['--method', 'ibot'], []],
  ];
  it.each(METHODS)('%s: 2 ranks at global batch 16 equal one process at batch 16 in every weight, buffer and optimizer state', async (_name, method, ranksOnly) => {
    const settings = ['pretrain', ...method, '--arch', 'vit_tiny', '--patch-size', '4', '--size', '8', '--train-limit', '16', '--batch-size', '16', '--epochs', '3'];
    const common = [...settings, '--views', '4', '--local-crops', '0', '--optimizer', 'sgd', '--out-dim', '32', '--log-every', '1', '--drop-path-rate', '0', '--knn-every', '0'];
    const one = runDir();
    const two = runDir();
    const a = await hvp([...common, '--out', one]);
    expect(a.code, a.stderr).toBe(0);
    const b = await mpirunHvp([...common, ...ranksOnly, '--out', two, '--allow-shared-device', 'true']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/2 ranks; gradient averaging per step/);
    const { bad, worst } = compareStates(two, one, 1e-4, 1e-6);
    expect(bad, `worst |a-b| / (atol + rtol|b|) = ${worst}`).toEqual([]);
    const logTwo = readRunState(two).log;
    expect(logTwo[0]).toMatchObject({ event: 'distributed', world_size: 2, rank_batch: 8 });
    // Rank 0 logs its own share's samples (the first half of the global batch) and the mean loss over the ranks.
    const stepsOne = readRunState(one).log.filter((r) => r.step !== undefined && r.loss !== undefined);
    const stepsTwo = logTwo.filter((r) => r.loss !== undefined);
    expect(stepsTwo.map((r) => r.indices)).toEqual(stepsOne.map((r) => (r.indices as number[]).slice(0, 8)));
    for (let i = 0; i < stepsOne.length; i++) expect(stepsTwo[i].loss as number).toBeCloseTo(stepsOne[i].loss as number, 4);
    expect((await readCheckpointMeta(join(two, CHECKPOINT))).world_size).toBe(2);
    // Only rank 0 writes the run directory.
    expect(readdirSync(two).sort()).toEqual(['checkpoint.safetensors', 'config.yaml', 'log.jsonl']);
  });

  const SIMSIAM = ['pretrain', '--method', 'simsiam', '--widths', '4,4,8,8', '--small-image', 'true', '--size', '8', '--dim', '16', '--pred-dim', '8', '--views', '2', '--select', 'random', '--log-every', '1', '--knn-every', '0'];

  /** `args` with each flag of `set` given its new value (flags absent from `args` are appended). */
  const withFlags = (args: string[], set: Record<string, string>) => {
    const out = [...args];
    for (const [flag, value] of Object.entries(set)) {
      const at = out.indexOf(flag);
      if (at >= 0) out[at + 1] = value;
      else out.push(flag, value);
    }
    return out;
  };

  // SimSiam on the small ResNet, whose batch norms (backbone, projector, predictor) are synchronised
  // on 2 ranks by default, with HVP selection on (the hardest of 4 views' pairs), so the selection
  // forward's batch statistics are the global batch's too: rank 0 must select what the single process
  // selects for its samples. 3 steps of global batch 16, SGD. Only the order of float sums differs
  // (each batch norm's per-channel sums merged across ranks in float64, the gradients summed across
  // ranks), and batch norm's backward on 8×8 images amplifies rounding: on the project's 2-core
  // machine (lavapipe) the worst tensor element was 3.2e-5 apart (a momentum buffer of magnitude
  // 0.13), where two single-process runs that differ only in their kernels' summation order
  // (--kernels gpu against auto) were 1.4e-5 apart in the same tensors; with --sync-bn false the
  // 2-rank run was 0.9 apart. Hence |a - b| <= 1e-4 + 1e-3·|b| for every tensor.
  it('SimSiam with --sync-bn: 2 ranks at global batch 16 equal one process at batch 16 in every weight, buffer and optimizer state', async () => {
    const common = withFlags(SIMSIAM, { '--views': '4', '--select': 'hardest', '--train-limit': '16', '--batch-size': '16', '--epochs': '3', '--optimizer': 'sgd' });
    const one = runDir();
    const two = runDir();
    const a = await hvp([...common, '--out', one]);
    expect(a.code, a.stderr).toBe(0);
    const b = await mpirunHvp([...common, '--out', two, '--allow-shared-device', 'true']);
    expect(b.code, b.stderr).toBe(0);
    const { bad, worst } = compareStates(two, one, 1e-3, 1e-4);
    expect(bad, `worst |a-b| / (atol + rtol|b|) = ${worst}`).toEqual([]);
    const logOne = readRunState(one).log;
    const logTwo = readRunState(two).log;
    expect(logOne.find((r) => r.event === 'distributed')).toBeUndefined();
    expect(logTwo[0]).toMatchObject({ event: 'distributed', world_size: 2, rank_batch: 8, sync_bn: true });
    const stepsOne = logOne.filter((r) => r.loss !== undefined);
    const stepsTwo = logTwo.filter((r) => r.loss !== undefined);
    expect(stepsTwo).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      expect(stepsTwo[i].indices).toEqual((stepsOne[i].indices as number[]).slice(0, 8));
      expect(stepsTwo[i].selected).toEqual((stepsOne[i].selected as number[][]).slice(0, 8));
      expect(stepsTwo[i].loss as number).toBeCloseTo(stepsOne[i].loss as number, 4);
    }
  });

  // SimCLR's negatives are local: each rank's NT-Xent contrasts its own share's views, and the step
  // averages the ranks' gradients, so a step is the mean of the ranks' SimCLR losses. One process
  // with --grad-accum-steps 2 at batch 16 runs exactly that: two half-batches, each with its own
  // negatives (and selection), the gradient of their mean loss. Batch norm over each half alone in
  // both (--sync-bn false on the ranks), so the runs agree in every weight and optimizer state, bit
  // for bit: each half's gradient is the same computation in both, and halving a sum of two is
  // exact in float whether done before (accumulation's loss / 2) or after (the ranks' average). The
  // running statistics are left out: accumulation moves them once per micro-batch (both halves),
  // rank 0 once with its own half.
  it('SimCLR\'s negatives are local: 2 ranks equal one process whose loss is the mean of the two half-batches\' SimCLR losses', async () => {
    const common = withFlags(SIMSIAM, { '--method': 'simclr', '--views': '4', '--select': 'hardest', '--train-limit': '16', '--batch-size': '16', '--epochs': '3', '--optimizer': 'sgd' });
    const one = runDir();
    const two = runDir();
    const a = await hvp([...common, '--grad-accum-steps', '2', '--out', one]);
    expect(a.code, a.stderr).toBe(0);
    const b = await mpirunHvp([...common, '--sync-bn', 'false', '--out', two, '--allow-shared-device', 'true']);
    expect(b.code, b.stderr).toBe(0);
    const running = (name: string) => /running_(mean|var)$|num_batches_tracked$/.test(name);
    expect(compareStates(two, one, 0, 0, running).bad).toEqual([]);
    expect(readRunState(two).log[0]).toMatchObject({ event: 'distributed', sync_bn: false });
  });

  // Each gradient bucket's readback starts inside the step's last backward, as soon as its gradients
  // are complete (on the last micro-batch with --grad-accum-steps). The all-reduce sums element by
  // element, so where the values were read changes nothing: the run equals one reading every bucket
  // after the backward, bit for bit. The bucket is 25 MB, so the tiny model is one bucket: --widths
  // large enough for 2 buckets would be a ResNet-18 at full width, too slow here.
  it('gradient buckets read back during the backward: the run equals one reading after it, bit for bit', async () => {
    const common = withFlags(SIMSIAM, { '--views': '4', '--select': 'hardest', '--train-limit': '16', '--batch-size': '16', '--epochs': '2', '--grad-accum-steps': '2', '--allow-shared-device': 'true' });
    const early = runDir();
    const late = runDir();
    const mpirunEnv = (value: string, out: string) =>
      run('mpirun', [...MPIRUN, '-x', 'HVP_EARLY_GRADIENT_READS', process.execPath, 'dist/hvp.js', ...common, '--out', out], undefined, { HVP_EARLY_GRADIENT_READS: value });
    const a = await mpirunEnv('1', early);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/; (\d+) of \1 buckets read back during the backward/);
    expect(a.stdout).not.toMatch(/; 0 of \d+ buckets read back during the backward/);
    const b = await mpirunEnv('0', late);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/; 0 of [1-9]\d* buckets read back during the backward/);
    expect(compareStates(early, late, 0, 0).bad).toEqual([]);
  });

  it('hvp doctor under mpirun names the adapter each rank opened, and prints the host report once', async () => {
    const r = await run('mpirun', [...MPIRUN, process.execPath, 'dist/hvp.js', 'doctor']);
    expect(r.code, r.stderr).toBe(0);
    for (const rank of [0, 1]) expect(r.stdout).toMatch(new RegExp(`^rank ${rank} of 2 \\(local rank ${rank}, host [^)]+\\) opened: .*llvmpipe`, 'm'));
    expect(r.stdout.match(/^Adapters Dawn sees:/gm)).toHaveLength(1);
  });

  it('a wrong launch stops with a clear error: an uneven batch, a shared GPU, a resume with another rank count', async () => {
    const uneven = await mpirunHvp([...SIMSIAM, '--train-limit', '16', '--batch-size', '7', '--max-steps', '1', '--out', runDir(), '--allow-shared-device', 'true']);
    expect(uneven.code).not.toBe(0);
    expect(uneven.stderr).toMatch(/--batch-size 7 is the global batch and must divide evenly over the 2 ranks/);
    const shared = await mpirunHvp([...SIMSIAM, '--train-limit', '16', '--batch-size', '8', '--max-steps', '1', '--out', runDir()]);
    expect(shared.code).not.toBe(0);
    expect(shared.stderr).toMatch(/opened the same GPU .*--allow-shared-device true/);
    const out = runDir();
    const single = await hvp([...SIMSIAM, '--train-limit', '16', '--batch-size', '8', '--epochs', '2', '--max-steps', '1', '--out', out]);
    expect(single.code, single.stderr).toBe(0);
    const resumed = await mpirunHvp(['pretrain', '--out', out, '--resume', '--max-steps', '2', '--allow-shared-device', 'true']);
    expect(resumed.code).not.toBe(0);
    expect(resumed.stderr).toMatch(/written by a run on 1 rank, this run has 2/);
  });

  it('a rank killed mid-run ends the job non-zero, and the last checkpoint loads', async () => {
    const out = runDir();
    // 2 steps per epoch (a checkpoint after each epoch), far more steps than the test waits for.
    const args = [...SIMSIAM, '--train-limit', '16', '--batch-size', '8', '--epochs', '1000', '--out', out, '--allow-shared-device', 'true'];
    let killed = 0;
    const r = await mpirunHvp(args, (mpirunPid) => {
      const poll = setInterval(() => {
        if (killed || !existsSync(join(out, CHECKPOINT))) return;
        const rank1 = childrenOf(mpirunPid).find((pid) => environOf(pid).includes('OMPI_COMM_WORLD_RANK=1'));
        if (rank1) {
          process.kill(rank1, 'SIGKILL');
          killed = rank1;
        }
      }, 100);
      return () => clearInterval(poll);
    });
    expect(killed).toBeGreaterThan(0);
    expect(r.code).not.toBe(0);
    const meta = await readCheckpointMeta(join(out, CHECKPOINT));
    expect(meta.step % 2).toBe(0);
    expect(meta.step).toBeGreaterThanOrEqual(2);
    // It loads: a resumed run on 2 ranks continues from it.
    const resumed = await mpirunHvp(['pretrain', '--out', out, '--resume', '--max-steps', String(meta.step + 1), '--allow-shared-device', 'true']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/finished after 1 steps/);
  });

  it('SIGTERM to one rank stops both at the same step, exit 143, and the resumed 2-rank run equals the uninterrupted one bit for bit', async () => {
    // 4 steps per epoch, 3 epochs; --grad-accum-steps 2 so the once-per-step gradient average after
    // the last micro-batch is part of what must resume exactly.
    const settings = [...SIMSIAM, '--train-limit', '32', '--batch-size', '8', '--epochs', '3', '--grad-accum-steps', '2', '--allow-shared-device', 'true'];
    const full = runDir();
    const a = await mpirunHvp([...settings, '--out', full]);
    expect(a.code, a.stderr).toBe(0);
    const part = runDir();
    let signalled = 0;
    const b = await mpirunHvp([...settings, '--out', part], (mpirunPid) => {
      // Rank 0 writes the log; once it holds step 1, rank 1 (which writes nothing) gets the signal.
      const poll = setInterval(() => {
        const log = join(part, 'log.jsonl');
        if (signalled || !existsSync(log) || !readFileSync(log, 'utf8').includes('"step":1,')) return;
        const rank1 = childrenOf(mpirunPid).find((pid) => environOf(pid).includes('OMPI_COMM_WORLD_RANK=1'));
        if (rank1) {
          process.kill(rank1, 'SIGTERM');
          signalled = rank1;
        }
      }, 20);
      return () => clearInterval(poll);
    });
    expect(signalled).toBeGreaterThan(0);
    expect(b.code, b.stderr).toBe(143);
    const stopped = (await readCheckpointMeta(join(part, CHECKPOINT))).step;
    expect(stopped).toBeGreaterThanOrEqual(2);
    expect(stopped).toBeLessThan(12);
    // Both ranks stopped at the checkpoint's step: rank 0 (which got no signal) says so with the
    // checkpoint, rank 1 with its rank.
    expect(b.stderr).toContain(`stopped by SIGTERM at step ${stopped}; checkpoint ${join(part, CHECKPOINT)}`);
    expect(b.stderr).toContain(`rank 1: stopped by SIGTERM at step ${stopped}`);
    expect(readRunState(part).log.filter((r) => r.loss !== undefined).at(-1)).toMatchObject({ step: stopped - 1 });

    const c = await mpirunHvp(['pretrain', '--out', part, '--resume', '--allow-shared-device', 'true']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(new RegExp(`finished after ${12 - stopped} steps`));
    const want = readRunState(full);
    const got = readRunState(part);
    expect(got.step).toBe(12);
    expect(differingTensors(got, want)).toEqual([]);
    expect(got.optimizer).toBe(want.optimizer);
    // Each start records its rank count; otherwise the log is the uninterrupted run's.
    const starts = got.log.filter((r) => r.event === 'distributed');
    expect(starts.map((r) => [r.step, r.world_size])).toEqual([
      [0, 2],
      [stopped, 2],
    ]);
    expect((await readCheckpointMeta(join(part, CHECKPOINT))).world_size).toBe(2);
    const rest = (log: Record<string, unknown>[]) => log.filter((r) => r.event !== 'distributed');
    expect(rest(got.log)).toEqual(rest(want.log));
  });
});

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function environOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return '';
  }
}
