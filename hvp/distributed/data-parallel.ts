// Data-parallel training over MPI: one process (rank) per GPU, each training on its slice of the
// global batch. At start rank 0's parameters and buffers are copied to every rank; after each
// backward the gradients are averaged over the ranks (read back bucket by bucket, summed with
// MPI_Allreduce, scaled by 1/N, uploaded), so every rank takes the same optimizer step. Tensors that
// are running averages of per-batch quantities (DINO's centre) are averaged the same way.

import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { Engine, Tensor } from '../../engine/index.js';
import type { ReplicaSync } from '../methods/method.js';
import type { StopSignal } from '../train/stop.js';
import { launcherWorldSize, loadMpi, type MpiBinding } from './mpi.js';

/** Gradient bytes per all-reduce (PyTorch DDP's default bucket is 25 MB). */
export const BUCKET_BYTES = 25 * 1024 * 1024;

/** Time spent in each part of the gradient averaging, summed over steps (ms). */
export interface SyncTimes {
  readback: number;
  allreduce: number;
  upload: number;
  steps: number;
  bytes: number;
  /** Buckets averaged, and those of them whose readback the backward itself started (armGradientReads). */
  buckets: number;
  earlyBuckets: number;
}

/** Parameters grouped into buckets of at most `bytes` (one larger parameter is a bucket of its own), in order. */
export function buckets(params: readonly Tensor[], bytes = BUCKET_BYTES): Tensor[][] {
  const out: Tensor[][] = [];
  let cur: Tensor[] = [];
  let size = 0;
  for (const p of params) {
    if (cur.length && size + p.size * 4 > bytes) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(p);
    size += p.size * 4;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Rank `rank`'s contiguous share [lo, hi) of a global batch of `batch` samples over `world` ranks. */
export function shardRange(batch: number, rank: number, world: number): [number, number] {
  if (batch % world !== 0) throw new Error(`--batch-size ${batch} is the global batch and must divide evenly over the ${world} ranks (mpirun -np ${world})`);
  const per = batch / world;
  return [rank * per, (rank + 1) * per];
}

/**
 * This process as one rank of a data-parallel run launched by mpirun/srun (`DataParallel.fromLauncher()`):
 * pass it as `PretrainOptions.distributed`. It copies rank 0's weights, averages gradients, and holds
 * the all-rank votes (the stop at a step boundary, the shared-GPU check).
 */
export class DataParallel implements ReplicaSync {
  readonly times: SyncTimes = { readback: 0, allreduce: 0, upload: 0, steps: 0, bytes: 0, buckets: 0, earlyBuckets: 0 };
  /**
   * Read each gradient bucket back as soon as the backward has completed it (armGradientReads), rather
   * than all of them after the backward: HVP_EARLY_GRADIENT_READS=1. Off by default: on lavapipe
   * (2 ranks sharing 2 cores, one bucket) it gained nothing measurable, and no GPU has measured it.
   */
  earlyReads = process.env.HVP_EARLY_GRADIENT_READS === '1';
  /** Reads started during the armed backward, by gradient tensor: its values once they arrive. */
  private early = new Map<Tensor, Promise<Float32Array>>();
  private armedEngine: Engine | null = null;
  private finalized = false;
  /** Set once the ranks agreed to stop on a signal: their exit 130/143 is then an orderly end. */
  private stopped = false;

  private constructor(
    private readonly mpi: MpiBinding,
    readonly rank: number,
    readonly world: number,
    readonly localRank: number,
  ) {}

  /**
   * The data-parallel context of a process launched by mpirun/srun with more than one rank, or null
   * for a single process (which then never loads MPI). Installs the handlers that end the whole job
   * when this rank fails: an error exit calls MPI_Abort, so no rank waits forever in a collective.
   */
  static fromLauncher(env: NodeJS.ProcessEnv = process.env): DataParallel | null {
    if (launcherWorldSize(env) <= 1) return null;
    const mpi = loadMpi();
    mpi.init();
    const dp = new DataParallel(mpi, mpi.rank(), mpi.size(), mpi.localRank());
    process.on('exit', (code) => dp.end(code));
    return dp;
  }

  get isRoot(): boolean {
    return this.rank === 0;
  }

  /**
   * At exit: finalize after success or after a stop every rank agreed on (a signal: 130, 143); after
   * a failure, MPI_Abort so mpirun ends every rank now.
   */
  end(code: number): void {
    if (this.finalized) return;
    this.finalized = true;
    if (code === 0 || (this.stopped && (code === 130 || code === 143))) this.mpi.finalize();
    else this.mpi.abort(code);
  }

  /**
   * The all-rank stop vote at a step boundary (every rank calls it at the same step): stop when any
   * rank was asked to, and report the same signal everywhere (SIGTERM, a scheduler's, over SIGINT),
   * so every rank stops at this step and exits with the same status.
   */
  agreeStop(signal: StopSignal | null, stop: boolean): { signal: StopSignal | null; stop: boolean } {
    const [ints, terms, stops] = this.sum(Float64Array.of(signal === 'SIGINT' ? 1 : 0, signal === 'SIGTERM' ? 1 : 0, stop ? 1 : 0));
    const agreed: StopSignal | null = terms > 0 ? 'SIGTERM' : ints > 0 ? 'SIGINT' : null;
    if (agreed) this.stopped = true;
    return { signal: agreed, stop: stops > 0 || agreed !== null };
  }

  /**
   * Stop when two ranks opened the same GPU: same host, same adapter description and the same
   * device-selection settings (DRI_PRIME, NVIDIA_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES). Identical
   * GPUs report identical descriptions, so ranks sharing a host must differ in how they select one.
   */
  checkDevices(description: string, allowShared: boolean, env: NodeJS.ProcessEnv = process.env): void {
    const key = [hostname(), description, ...['DRI_PRIME', 'NVIDIA_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES', 'MESA_VK_DEVICE_SELECT'].map((k) => `${k}=${env[k] ?? ''}`)].join('\n');
    const digest = new Uint8Array(createHash('sha256').update(key).digest());
    const all = this.allgather(digest);
    const same: number[] = [];
    for (let r = 0; r < this.world; r++) {
      if (r !== this.rank && all.subarray(r * 32, r * 32 + 32).every((b, i) => b === digest[i])) same.push(r);
    }
    if (!same.length || allowShared) return;
    throw new Error(
      `rank ${this.rank} and rank ${same.join(', ')} opened the same GPU (${description}) on ${hostname()}: give each rank its own ` +
        '(one container per GPU with NVIDIA_VISIBLE_DEVICES, or DRI_PRIME=pci-DDDD_BB_DD_F! per local rank; see README), or pass --allow-shared-device true to run anyway',
    );
  }

  /** Wait until every rank has reached this call (MPI_Barrier). */
  barrier(): void {
    this.mpi.barrier();
  }

  /** Copy rank 0's values of `tensors` (parameters, buffers, optimizer state) to every rank. */
  async broadcast(tensors: readonly Tensor[]): Promise<void> {
    for (const group of buckets(tensors.filter((t) => t.dtype === 'f32'))) {
      const host = await readAll(group);
      this.mpi.broadcast(host, 0);
      writeAll(group, host);
    }
    // Integer state (batch norm's num_batches_tracked), one tensor at a time: it is small.
    for (const t of tensors.filter((t) => t.dtype !== 'f32')) {
      const host = Int32Array.from(await t.toArray());
      this.mpi.broadcast(host, 0);
      writeAll([t], host);
    }
  }

  /** Every rank's values of a small Float64 vector, summed (bookkeeping: counts, losses). */
  sum(values: Float64Array): Float64Array {
    const out = Float64Array.from(values);
    this.mpi.allreduceSum(out);
    return out;
  }

  /** `values` of every rank, concatenated in rank order. */
  allgather<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(values: T): T {
    const Ctor = values.constructor as new (n: number) => T;
    const out = new Ctor(values.length * this.world);
    this.mpi.allgather(values, out);
    return out;
  }

  /**
   * Before a step's last backward (the one after which `gradients` runs): as each bucket of `params`
   * has all its gradients complete, start reading it back while the backward goes on, so the copies
   * run on the GPU behind the gradients they read and the first all-reduce need not wait for the
   * last layer's gradient. A parameter that gets no gradient leaves its bucket to `gradients`.
   */
  armGradientReads(params: readonly Tensor[]): void {
    this.disarm();
    const trained = params.filter((p) => p.requiresGrad);
    if (!this.earlyReads || !trained.length) return;
    const engine = trained[0].engine;
    const groups = buckets(trained);
    const bucketOf = new Map<Tensor, number>();
    groups.forEach((g, i) => g.forEach((p) => bucketOf.set(p, i)));
    const remaining = groups.map((g) => g.length);
    engine.onLeafGradient = (leaf) => {
      const i = bucketOf.get(leaf);
      if (i === undefined || --remaining[i] !== 0) return;
      const grads = groups[i].map((p) => p.grad!);
      const read = readAll(grads);
      read.catch(() => {});
      let at = 0;
      for (const g of grads) {
        const from = at;
        const values = read.then((all) => all.subarray(from, from + g.size));
        values.catch(() => {});
        this.early.set(g, values);
        at += g.size;
      }
    };
    this.armedEngine = engine;
  }

  private disarm(): Map<Tensor, Promise<Float32Array>> {
    if (this.armedEngine) this.armedEngine.onLeafGradient = null;
    this.armedEngine = null;
    const early = this.early;
    this.early = new Map();
    return early;
  }

  /**
   * Average the gradients of `params` over the ranks, in place, bucket by bucket: the buckets the
   * armed backward did not already start reading are read now (the copies queue behind the backward
   * on the GPU), then each bucket, the last first (every rank in the same order), is summed with
   * MPI_Allreduce as soon as its values arrive and uploaded scaled by 1/N. The sum is element by element, so where a bucket's values came from
   * changes nothing in the result.
   */
  async gradients(params: readonly Tensor[]): Promise<void> {
    const early = this.disarm();
    const withGrad = params.filter((p) => p.grad);
    const grads = withGrad.map((p) => p.grad!);
    const groups = buckets(grads);
    let t = performance.now();
    const reads = groups.map((g) => bucketValues(g, early));
    this.times.buckets += groups.length;
    this.times.earlyBuckets += groups.filter((g) => g.every((t) => early.has(t))).length;
    for (const r of reads) r.catch(() => {});
    // Last bucket first: the backward completes the last layers' gradients first, so their read is the
    // first to arrive, and its all-reduce runs while the GPU still computes the first layers'.
    for (let i = groups.length - 1; i >= 0; i--) {
      const host = await reads[i];
      let now = performance.now();
      this.times.readback += now - t;
      t = now;
      this.mpi.allreduceSum(host);
      now = performance.now();
      this.times.allreduce += now - t;
      t = now;
      const scale = 1 / this.world;
      for (let k = 0; k < host.length; k++) host[k] *= scale;
      writeAll(groups[i], host);
      now = performance.now();
      this.times.upload += now - t;
      t = now;
      this.times.bytes += host.byteLength;
    }
    this.times.steps++;
  }

  /** Replace each tensor's values by their mean over the ranks (DINO's centre after its update). */
  async average(tensors: readonly Tensor[]): Promise<void> {
    const host = await readAll(tensors);
    this.mpi.allreduceSum(host);
    for (let k = 0; k < host.length; k++) host[k] /= this.world;
    writeAll(tensors, host);
  }
}

/** The values of `tensors` (f32), concatenated: one copy and one map for contiguous tensors. */
async function readAll(tensors: readonly Tensor[]): Promise<Float32Array> {
  if (tensors.some((t) => t.dtype !== 'f32')) throw new Error('data-parallel: only f32 tensors are synchronised across ranks');
  const out = new Float32Array(tensors.reduce((n, t) => n + t.size, 0));
  if (tensors.every((t) => t.isContiguous())) {
    const regions = tensors.map((t) => ({ buffer: t.buffer, byteOffset: t.offset * 4, byteLength: t.size * 4 }));
    const parts = tensors.length ? await tensors[0].engine.backend.readRegions(regions) : [];
    let at = 0;
    for (const p of parts) {
      out.set(new Float32Array(p), at);
      at += p.byteLength / 4;
    }
    return out;
  }
  const parts = await Promise.all(tensors.map((t) => t.toArray()));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A bucket's values: each gradient's from a read the armed backward started, else read now. */
async function bucketValues(grads: readonly Tensor[], early: Map<Tensor, Promise<Float32Array>>): Promise<Float32Array> {
  const missing = grads.filter((g) => !early.has(g));
  if (missing.length === grads.length) return readAll(grads);
  const fresh = missing.length ? readAll(missing) : null;
  const out = new Float32Array(grads.reduce((n, g) => n + g.size, 0));
  const freshValues = fresh ? await fresh : null;
  let at = 0;
  let freshAt = 0;
  for (const g of grads) {
    const got = early.get(g);
    if (got) out.set(await got, at);
    else {
      out.set(freshValues!.subarray(freshAt, freshAt + g.size), at);
      freshAt += g.size;
    }
    at += g.size;
  }
  return out;
}

/** Upload consecutive slices of `host` into `tensors` (contiguous, in place). */
function writeAll(tensors: readonly Tensor[], host: Float32Array | Int32Array): void {
  let at = 0;
  for (const t of tensors) {
    if (!t.isContiguous()) throw new Error(`data-parallel: ${t} is not contiguous and cannot be written in place`);
    t.engine.backend.write(t.buffer, t.offset * 4, host.subarray(at, at + t.size));
    at += t.size;
  }
}
