// Per-dispatch kernel profiling. While a profile runs, the runtime gives every dispatch a compute
// pass of its own whose beginning and end write GPU timestamps (where the device has
// `timestamp-query`), resolved into a buffer at each submit in chunks of at most MAX_QUERIES; without
// timestamps, each recorded dispatch is replayed alone afterwards and timed by the wall clock.

import type { Defines } from './shader.js';

/** How dispatches were timed: GPU timestamp queries, or wall time around each. */
export type ProfileClock = 'timestamp-query' | 'wall';

/** One profiled dispatch: kernel, workgroups and its time. */
export interface DispatchRecord {
  name: string;
  defines?: Defines;
  workgroups: [number, number, number];
  /** Floating-point operations and bytes moved, when the op states them. */
  flops?: number;
  bytes?: number;
  /** Start on the profile's timeline (first dispatch at 0) and duration, in microseconds. */
  startUs: number;
  durUs: number;
}

/** What Engine profiling records: every dispatch and the clock that timed it. */
export interface Profile {
  clock: ProfileClock;
  records: DispatchRecord[];
}

/** WebGPU caps a timestamp query set at 4096 queries: two per dispatch. */
const MAX_QUERIES = 4096;

interface Chunk {
  querySet: GPUQuerySet;
  resolveBuf: GPUBuffer;
  readBuf: GPUBuffer;
  used: number;
  /** Index into the profiler's records of the dispatch whose begin stamp is at query 0. */
  first: number;
  mapped?: Promise<void>;
}

/** What a wall-clock replay needs to run one dispatch again on its own. */
export interface Replay {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  uniforms: Uint8Array;
}

export class DispatchProfiler {
  readonly records: DispatchRecord[] = [];
  private chunks: Chunk[] = [];
  private open: Chunk | null = null;
  private toResolve: Chunk[] = [];
  private replays: (Replay & { uniforms: Uint8Array<ArrayBuffer> })[] = [];

  constructor(
    private readonly device: GPUDevice,
    readonly clock: ProfileClock,
  ) {}

  /** Record a dispatch; with timestamps, the pass descriptor that stamps it. */
  add(rec: Omit<DispatchRecord, 'startUs' | 'durUs'>, replay: Replay): GPUComputePassDescriptor | undefined {
    this.records.push({ ...rec, startUs: 0, durUs: 0 });
    if (this.clock === 'wall') {
      this.replays.push({ ...replay, uniforms: new Uint8Array(replay.uniforms) });
      return undefined;
    }
    let c = this.open;
    if (!c || c.used === MAX_QUERIES) {
      c = this.newChunk();
      this.open = c;
    }
    const i = c.used;
    c.used += 2;
    return { timestampWrites: { querySet: c.querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 } };
  }

  private newChunk(): Chunk {
    const size = MAX_QUERIES * 8;
    const c: Chunk = {
      querySet: this.device.createQuerySet({ type: 'timestamp', count: MAX_QUERIES, label: 'profile' }),
      resolveBuf: this.device.createBuffer({ size, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'profile-resolve' }),
      readBuf: this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'profile-read' }),
      used: 0,
      first: this.records.length - 1,
    };
    this.chunks.push(c);
    this.toResolve.push(c);
    return c;
  }

  /** Before the runtime finishes its encoder: resolve the stamps it wrote. */
  resolve(encoder: GPUCommandEncoder): void {
    for (const c of this.toResolve) {
      if (c.used === 0) continue;
      encoder.resolveQuerySet(c.querySet, 0, c.used, c.resolveBuf, 0);
      encoder.copyBufferToBuffer(c.resolveBuf, 0, c.readBuf, 0, c.used * 8);
    }
  }

  /** After the runtime's submit: start reading the resolved stamps back. */
  submitted(): void {
    for (const c of this.toResolve) if (c.used > 0) c.mapped = c.readBuf.mapAsync(GPUMapMode.READ, 0, c.used * 8);
    this.toResolve = [];
    this.open = null;
  }

  /** Fill in every record's times. The runtime has submitted everything before this is called. */
  async finish(ring: GPUBuffer): Promise<Profile> {
    if (this.clock === 'wall') await this.replayAll(ring);
    else await this.readStamps();
    for (const c of this.chunks) {
      c.querySet.destroy();
      c.resolveBuf.destroy();
      c.readBuf.destroy();
    }
    this.chunks = [];
    return { clock: this.clock, records: this.records };
  }

  private async readStamps(): Promise<void> {
    const ns: bigint[] = [];
    for (const c of this.chunks) {
      if (!c.mapped) continue;
      await c.mapped;
      const stamps = new BigUint64Array(c.readBuf.getMappedRange(0, c.used * 8).slice(0));
      c.readBuf.unmap();
      for (let q = 0; q < c.used; q += 2) {
        const rec = this.records[c.first + q / 2];
        ns.push(stamps[q]);
        rec.durUs = Number(stamps[q + 1] - stamps[q]) / 1e3;
      }
    }
    if (ns.length !== this.records.length) throw new Error(`profile: ${this.records.length} dispatches but ${ns.length} timestamp pairs`);
    const t0 = ns.reduce((a, b) => (b < a ? b : a), ns[0] ?? 0n);
    this.records.forEach((r, i) => (r.startUs = Number(ns[i] - t0) / 1e3));
  }

  /**
   * Each dispatch alone: write its uniforms, submit it, wait for the queue. An empty submission's
   * round trip (the median of a few) is subtracted, so the times are closer to the kernel's own.
   */
  private async replayAll(ring: GPUBuffer): Promise<void> {
    const q = this.device.queue;
    const empty: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      q.submit([this.device.createCommandEncoder().finish()]);
      await q.onSubmittedWorkDone();
      empty.push(performance.now() - t0);
    }
    const overhead = empty.sort((a, b) => a - b)[3];
    let at = 0;
    for (let i = 0; i < this.replays.length; i++) {
      const r = this.replays[i];
      const [x, y, z] = this.records[i].workgroups;
      q.writeBuffer(ring, 0, r.uniforms);
      const t0 = performance.now();
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(r.pipeline);
      pass.setBindGroup(0, r.bindGroup, [0]);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
      q.submit([enc.finish()]);
      await q.onSubmittedWorkDone();
      const ms = Math.max(performance.now() - t0 - overhead, 0);
      this.records[i].startUs = at;
      this.records[i].durUs = ms * 1e3;
      at += ms * 1e3;
    }
    this.replays = [];
  }
}

/** Profiled time per kernel, summed over its dispatches. */
export interface KernelRow {
  name: string;
  dispatches: number;
  totalMs: number;
  /** Fraction of all profiled kernel time. */
  share: number;
  meanUs: number;
  /** Over the dispatches that state their work. */
  gflops?: number;
  gbps?: number;
}

/** One row per kernel name, by total time, longest first. */
export function kernelTable(records: DispatchRecord[]): KernelRow[] {
  const byName = new Map<string, { n: number; us: number; flops: number; flopsUs: number; bytes: number; bytesUs: number }>();
  let all = 0;
  for (const r of records) {
    let row = byName.get(r.name);
    if (!row) byName.set(r.name, (row = { n: 0, us: 0, flops: 0, flopsUs: 0, bytes: 0, bytesUs: 0 }));
    row.n++;
    row.us += r.durUs;
    all += r.durUs;
    if (r.flops !== undefined) {
      row.flops += r.flops;
      row.flopsUs += r.durUs;
    }
    if (r.bytes !== undefined) {
      row.bytes += r.bytes;
      row.bytesUs += r.durUs;
    }
  }
  const rows: KernelRow[] = [];
  for (const [name, r] of byName) {
    const row: KernelRow = { name, dispatches: r.n, totalMs: r.us / 1e3, share: all > 0 ? r.us / all : 0, meanUs: r.us / r.n };
    if (r.flopsUs > 0) row.gflops = r.flops / r.flopsUs / 1e3;
    if (r.bytesUs > 0) row.gbps = r.bytes / r.bytesUs / 1e3;
    rows.push(row);
  }
  return rows.sort((a, b) => b.totalMs - a.totalMs);
}

/** The per-kernel table as aligned text, the `top` kernels by time. */
export function formatKernelTable(rows: KernelRow[], clock: ProfileClock, top = Infinity): string {
  const head = '| kernel | dispatches | total ms | share | mean us | GFLOP/s | GB/s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |';
  const shown = rows.slice(0, top);
  const lines = shown.map((r) =>
    `| ${r.name} | ${r.dispatches} | ${r.totalMs.toFixed(3)} | ${(100 * r.share).toFixed(1)}% | ${r.meanUs.toFixed(1)} | ${r.gflops?.toFixed(1) ?? ''} | ${r.gbps?.toFixed(2) ?? ''} |`,
  );
  const total = rows.reduce((s, r) => s + r.totalMs, 0);
  const n = rows.reduce((s, r) => s + r.dispatches, 0);
  const rest = rows.length > shown.length ? `\n(${rows.length - shown.length} more kernels not shown)` : '';
  const how = clock === 'timestamp-query' ? 'GPU timestamps around each dispatch' : 'wall time of each dispatch replayed alone, less an empty submission';
  return `${head}\n${lines.join('\n')}${rest}\n\n${n} dispatches, ${total.toFixed(3)} ms of kernel time; timing: ${how}`;
}

/** Chrome trace-event JSON (chrome://tracing, Perfetto): one complete event per dispatch. */
export function chromeTrace(profile: Profile, meta: Record<string, string | number> = {}): object {
  return {
    displayTimeUnit: 'ms',
    otherData: { clock: profile.clock, ...meta },
    traceEvents: profile.records.map((r) => ({
      name: r.name,
      cat: 'dispatch',
      ph: 'X',
      ts: r.startUs,
      dur: r.durUs,
      pid: 1,
      tid: 1,
      args: {
        workgroups: r.workgroups.join('x'),
        ...(r.defines ? { defines: r.defines } : {}),
        ...(r.flops !== undefined ? { flops: r.flops } : {}),
        ...(r.bytes !== undefined ? { bytes: r.bytes } : {}),
      },
    })),
  };
}
