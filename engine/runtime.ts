// The backend: compiles and caches compute pipelines, batches dispatches into one command encoder,
// packs every dispatch's uniforms into one ring buffer, and moves data to and from the GPU. It knows
// buffers and kernels, nothing of tensors' meaning or of models.

import { BufferPool, bucketSize, type PoolStats } from './buffer-pool.js';
import { acquireDevice, DeviceLostError, type DeviceOptions } from './device.js';
import { preprocess, type Defines } from './shader.js';
import { DispatchProfiler, type Profile } from './profile.js';

/**
 * A kernel to dispatch. An op may build a new one per dispatch or reuse one object: a reused object
 * skips the cache key built from its defines, so it must not change after its first dispatch.
 */
export interface Kernel {
  /** Label of the pipeline: it names the kernel in every error and profile. */
  name: string;
  /** WGSL template (see shader.ts). Binding 0 is the uniform block, then inputs, then outputs. */
  source: string;
  defines?: Defines;
}

export interface DispatchArgs {
  kernel: Kernel;
  /** Bound read-only, at bindings 1..n. */
  inputs: GPUBuffer[];
  /** Bound read-write, after the inputs. They may also be read (in-place updates). */
  outputs: GPUBuffer[];
  /** Contents of the uniform block: at most UNIFORM_SLOT bytes. */
  uniforms: ArrayBufferView;
  workgroups: readonly [number, number?, number?];
  /** Floating-point operations of this dispatch, for the profiler's GFLOP/s. */
  flops?: number;
  /** Bytes this dispatch reads and writes, for the profiler's GB/s. */
  bytes?: number;
}

/** A byte range of a buffer, read or written at a host step. */
export interface BufferRegion {
  buffer: GPUBuffer;
  byteOffset: number;
  byteLength: number;
}

/** An upload a host step asks for: `data` into `buffer` at `byteOffset`. */
export interface HostWrite {
  buffer: GPUBuffer;
  byteOffset: number;
  data: ArrayBufferView;
}

/**
 * A host step's computation: the regions it reads, as they are once every earlier dispatch has run,
 * in; the uploads that every later dispatch must see, out. It may block (an MPI collective).
 */
export type HostStepFn = (data: ArrayBuffer[]) => readonly HostWrite[];

/**
 * Work held back behind a host step: a finished command batch with the uniform ring bytes it was
 * encoded against, a deferred upload, or the host step itself (with its readback, when that was
 * started at once because nothing was held before it).
 */
type HeldEntry =
  | { kind: 'commands'; cmd: GPUCommandBuffer; uniforms: Uint8Array<ArrayBuffer>; kernels: string }
  | { kind: 'write'; buffer: GPUBuffer; byteOffset: number; data: Uint8Array<ArrayBuffer> }
  | { kind: 'host'; regions: readonly BufferRegion[]; fn: HostStepFn; read: Promise<ArrayBuffer[]> | null };

/** Bytes per dispatch in the uniform ring; dynamic uniform offsets must be multiples of 256. */
export const UNIFORM_SLOT = 256;
const RING_SLOTS = 4096;
const MAX_BIND_GROUPS = 50_000;

type BindTrie = Map<number, BindTrie | GPUBindGroup>;

interface PipelineEntry {
  id: number;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export class Runtime {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly description: string;
  readonly features: Set<string>;
  readonly limits: GPUSupportedLimits;
  readonly pool: BufferPool;
  /**
   * A software adapter (lavapipe/llvmpipe, SwiftShader) runs shaders on the CPU, where workgroup
   * memory is ordinary memory: some kernels pick a variant without staging there.
   */
  readonly isCpuAdapter: boolean;

  private pipelines = new Map<string, PipelineEntry>();
  /** The pipeline of each reused Kernel object, with the binding counts it was made for. */
  private byKernel = new WeakMap<Kernel, { nIn: number; nOut: number; entry: PipelineEntry }>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  private sourceIds = new Map<string, number>();
  /**
   * Bind groups in a trie per pipeline id, one level per bound buffer keyed by its pool id: small
   * integer keys hash far faster than a string key built on every dispatch.
   */
  private bindGroups: BindTrie[] = [];
  private bindGroupCount = 0;
  private uniformRing: GPUBuffer;
  private uniformCpu = new Uint8Array(UNIFORM_SLOT * RING_SLOTS);
  private uniformCpu32 = new Uint32Array(this.uniformCpu.buffer);
  private slotsUsed = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** The pipeline last set on `pass`: setting it again would be a wasted native call. */
  private passPipeline: GPUComputePipeline | null = null;
  /**
   * The uniform slot's offset, the one dynamic offset of every bind group. A plain array that every
   * dispatch rewrites: Dawn's bindings convert it faster than a typed array with a start and length.
   */
  private readonly dynOffset = [0];
  private profiler: DispatchProfiler | null = null;
  /** Limits read on every dispatch, copied once: each read of device.limits is a native call. */
  private readonly maxBuffersPerStage: number;
  private readonly maxWorkgroupsPerDim: number;
  private batchKernels: string[] = [];
  private pendingErrors: Promise<string | null>[] = [];
  /** Set once the device's `lost` promise has resolved: from then on every launch and wait fails fast. */
  private lost: GPUDeviceLostInfo | null = null;
  /** Waits in flight (untilLost), rejected at once when the device is lost. */
  private lostWaiters = new Set<() => void>();
  private uncaptured: string | null = null;
  private stagingFree = new Map<number, GPUBuffer[]>();
  /** Counters for tests and the bench. */
  readonly counters = { dispatches: 0, submits: 0, pipelinesCreated: 0, bindGroupsCreated: 0, readbacks: 0 };
  /**
   * Host steps and the work after them, in order, not yet submitted (see hostStep). Empty on a
   * single device: then flush() submits at once and nothing below is ever consulted.
   */
  private held: HeldEntry[] = [];
  /** The drain in progress: a second caller waits for it. */
  private draining: Promise<void> | null = null;
  /** A trim() asked for while work was held: done once the held work is submitted. */
  private trimAfterDrain = false;
  /** Launch scratch of each kernel declaration and op launcher on this device (scratchFor). */
  private readonly scratch = new Map<object, unknown>();

  private constructor(
    readonly gpu: GPU,
    adapter: GPUAdapter,
    device: GPUDevice,
    description: string,
    features: Set<string>,
    software: boolean,
    kernels: DeviceOptions['kernels'] = 'auto',
  ) {
    this.adapter = adapter;
    this.device = device;
    this.description = description;
    this.features = features;
    this.limits = device.limits;
    this.maxBuffersPerStage = this.limits.maxStorageBuffersPerShaderStage;
    this.maxWorkgroupsPerDim = this.limits.maxComputeWorkgroupsPerDimension;
    this.isCpuAdapter = kernels === 'auto' ? software : kernels === 'cpu';
    this.pool = new BufferPool(device, device.limits.maxStorageBufferBindingSize);
    this.uniformRing = device.createBuffer({
      size: this.uniformCpu.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'uniform-ring',
    });
    device.lost.then((info) => {
      this.lost = info;
      for (const reject of this.lostWaiters) reject();
      this.lostWaiters.clear();
    });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.uncaptured ??= ev.error.message;
    };
  }

  static async create(opts: DeviceOptions = {}): Promise<Runtime> {
    const { gpu, adapter, device, description, features, software, kernels } = await acquireDevice(opts);
    return new Runtime(gpu, adapter, device, description, features, software, kernels);
  }

  /**
   * The scratch state that `owner` (a kernel declaration, an op's launcher) reuses across its launches
   * on this device, made by `make` on first use. Declarations live at module level and serve every
   * device, so their reusable objects live here: two engines never share one, and a launch on one
   * device cannot see the half-written state of a launch on another.
   */
  scratchFor<T>(owner: object, make: () => T): T {
    let s = this.scratch.get(owner) as T | undefined;
    if (s === undefined) this.scratch.set(owner, (s = make()));
    return s;
  }

  // ---------------------------------------------------------------- pipelines

  private layoutFor(nIn: number, nOut: number): GPUBindGroupLayout {
    const key = `${nIn}:${nOut}`;
    let layout = this.layouts.get(key);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
      ];
      for (let i = 0; i < nIn + nOut; i++) {
        entries.push({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: i < nIn ? 'read-only-storage' : 'storage' },
        });
      }
      layout = this.device.createBindGroupLayout({ entries, label: `layout ${key}` });
      this.layouts.set(key, layout);
    }
    return layout;
  }

  private pipelineFor(k: Kernel, nIn: number, nOut: number): PipelineEntry {
    const known = this.byKernel.get(k);
    if (known && known.nIn === nIn && known.nOut === nOut) return known.entry;
    const entry = this.pipelineByKey(k, nIn, nOut);
    this.byKernel.set(k, { nIn, nOut, entry });
    return entry;
  }

  private pipelineByKey(k: Kernel, nIn: number, nOut: number): PipelineEntry {
    let sid = this.sourceIds.get(k.source);
    if (sid === undefined) this.sourceIds.set(k.source, (sid = this.sourceIds.size));
    let key = `${k.name}|${sid}|${nIn}|${nOut}|`;
    const d = k.defines;
    // Cheaper than JSON.stringify on every dispatch; values never contain the separators' meaning.
    if (d) for (const name in d) key += `${name}=${d[name]};`;
    let entry = this.pipelines.get(key);
    if (!entry) {
      const code = preprocess(k.source, k.defines);
      const module = this.device.createShaderModule({ code, label: k.name });
      const layout = this.layoutFor(nIn, nOut);
      const pipeline = this.device.createComputePipeline({
        label: k.name,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
      });
      entry = { id: this.pipelines.size, pipeline, layout };
      this.pipelines.set(key, entry);
      this.counters.pipelinesCreated++;
    }
    return entry;
  }

  private bindGroupFor(p: PipelineEntry, inputs: GPUBuffer[], outputs: GPUBuffer[], label: string): GPUBindGroup {
    const ids = this.pool.ids;
    const nIn = inputs.length;
    const n = nIn + outputs.length;
    let node: BindTrie = (this.bindGroups[p.id] ??= new Map());
    // A buffer from outside the pool has no id: its bind group is not cached.
    let cacheable = true;
    for (let i = 0; i < n - 1 && cacheable; i++) {
      const id = ids.get(i < nIn ? inputs[i] : outputs[i - nIn]);
      if (id === undefined) cacheable = false;
      else {
        let next = node.get(id) as BindTrie | undefined;
        if (!next) node.set(id, (next = new Map()));
        node = next;
      }
    }
    const lastId = n === 0 ? -1 : ids.get(n - 1 < nIn ? inputs[n - 1] : outputs[n - 1 - nIn]);
    cacheable &&= lastId !== undefined;
    if (cacheable) {
      const hit = node.get(lastId!) as GPUBindGroup | undefined;
      if (hit) return hit;
    }
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniformRing, size: UNIFORM_SLOT } }];
    for (const buffer of inputs) entries.push({ binding: entries.length, resource: { buffer } });
    for (const buffer of outputs) entries.push({ binding: entries.length, resource: { buffer } });
    const bg = this.device.createBindGroup({ layout: p.layout, entries, label });
    this.counters.bindGroupsCreated++;
    if (cacheable) {
      if (this.bindGroupCount >= MAX_BIND_GROUPS) {
        this.bindGroups = [];
        this.bindGroupCount = 0;
      } else {
        node.set(lastId!, bg);
        this.bindGroupCount++;
      }
    }
    return bg;
  }

  // ---------------------------------------------------------------- dispatch

  private beginBatch(): GPUCommandEncoder {
    if (!this.encoder) {
      // Error scopes around the whole batch: a validation or out-of-memory error raised by any call in
      // it is reported at the next sync point, together with the kernels the batch held.
      this.device.pushErrorScope('internal');
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  dispatch(a: DispatchArgs): void {
    if (this.lost) throw this.lostError(`the launch of ${a.kernel.name}`);
    const nIn = a.inputs.length;
    const nOut = a.outputs.length;
    if (nIn + nOut > this.maxBuffersPerStage) {
      throw new Error(`${a.kernel.name}: ${nIn + nOut} storage buffers exceed the device limit`);
    }
    const u = a.uniforms;
    if (u.byteLength > UNIFORM_SLOT) {
      throw new Error(`${a.kernel.name}: uniform block of ${u.byteLength} bytes exceeds ${UNIFORM_SLOT}`);
    }
    const wg = a.workgroups;
    const x = wg[0];
    const y = wg[1] ?? 1;
    const z = wg[2] ?? 1;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.maxWorkgroupsPerDim;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new Error(`${a.kernel.name}: workgroup grid ${x}x${y}x${z} exceeds ${maxDim} per dimension`);
    }
    if (this.slotsUsed === RING_SLOTS) this.flush();
    const p = this.pipelineFor(a.kernel, nIn, nOut);
    const encoder = this.beginBatch();
    const slot = this.slotsUsed++;
    // Most ops pack a Uint32Array: copy it without making a byte view of it.
    if (u instanceof Uint32Array) this.uniformCpu32.set(u, slot * (UNIFORM_SLOT / 4));
    else this.uniformCpu.set(new Uint8Array(u.buffer, u.byteOffset, u.byteLength), slot * UNIFORM_SLOT);
    const bg = this.bindGroupFor(p, a.inputs, a.outputs, a.kernel.name);
    let pass = this.pass;
    if (this.profiler) {
      const stamps = this.profiler.add(
        { name: a.kernel.name, defines: a.kernel.defines, workgroups: [x, y, z], flops: a.flops, bytes: a.bytes },
        { pipeline: p.pipeline, bindGroup: bg, uniforms: this.uniformCpu.subarray(slot * UNIFORM_SLOT, slot * UNIFORM_SLOT + u.byteLength) },
      );
      // With timestamps, a pass of its own per dispatch: the pass's begin and end stamps bracket it.
      if (stamps) {
        pass?.end();
        pass = encoder.beginComputePass(stamps);
        this.pass = pass;
        this.passPipeline = null;
      }
    }
    if (!pass) {
      pass = encoder.beginComputePass();
      this.pass = pass;
      this.passPipeline = null;
    }
    if (this.passPipeline !== p.pipeline) {
      pass.setPipeline(p.pipeline);
      this.passPipeline = p.pipeline;
    }
    this.dynOffset[0] = slot * UNIFORM_SLOT;
    pass.setBindGroup(0, bg, this.dynOffset);
    pass.dispatchWorkgroups(x, y, z);
    this.batchKernels.push(a.kernel.name);
    this.counters.dispatches++;
  }

  /**
   * Submit everything encoded so far. Cheap when nothing is pending. Behind a host step nothing is
   * submitted: the batch joins the held work, which the next sync() or readback drains.
   */
  flush(): void {
    const encoder = this.encoder;
    if (!encoder) return;
    if (this.lost) throw this.lostError(`the submission of ${summarize(this.batchKernels)}`);
    this.pass?.end();
    this.profiler?.resolve(encoder);
    const cmd = encoder.finish();
    const kernels = summarize(this.batchKernels);
    if (this.held.length) {
      // Behind a host step: keep the batch, with the uniform bytes it was encoded against (the next
      // batch reuses the ring from slot 0), until drain() reaches it.
      this.held.push({ kind: 'commands', cmd, uniforms: this.uniformCpu.slice(0, this.slotsUsed * UNIFORM_SLOT), kernels });
    } else {
      this.device.queue.writeBuffer(this.uniformRing, 0, this.uniformCpu, 0, this.slotsUsed * UNIFORM_SLOT);
      this.device.queue.submit([cmd]);
      this.profiler?.submitted();
      this.counters.submits++;
    }
    for (let i = 0; i < 3; i++) {
      this.pendingErrors.push(
        this.device.popErrorScope().then((e) => (e ? `${e.message} (batch held kernels: ${kernels})` : null)),
      );
    }
    this.pass = null;
    this.passPipeline = null;
    this.encoder = null;
    this.slotsUsed = 0;
    this.batchKernels = [];
  }

  // ---------------------------------------------------------------- host steps

  /**
   * A host step in the middle of the dispatch stream: once every dispatch encoded so far has run,
   * `regions` are read back, `fn` computes on them on the host (it may block, as an MPI all-reduce
   * does), and its uploads land before any dispatch encoded after this call runs. Encoding goes on at
   * once: the forward and backward stay synchronous code, and the step runs at the next sync point
   * (sync(), a readback), which first drains the held work in order: each held batch submitted with
   * its own uniforms, each host step's readback mapped, its function called and its uploads written.
   * When nothing is held yet, the work before the step is submitted and its readback started now, so
   * the GPU runs it while the host encodes what follows.
   */
  hostStep(regions: readonly BufferRegion[], fn: HostStepFn): void {
    if (this.lost) throw this.lostError('a host step');
    if (this.profiler) throw new Error('hostStep: not available while a profile is running (the profiler times submitted batches; a host step holds them back)');
    const first = !this.held.length;
    this.flush();
    const read = first ? this.readNow(regions, 'a host step\'s readback') : null;
    read?.catch(() => {});
    this.held.push({ kind: 'host', regions, fn, read });
  }

  /** Whether host steps (and the work behind them) wait for the next sync point. */
  get hasHeldWork(): boolean {
    return this.held.length > 0;
  }

  /** Submit the held work in order, running each host step on the way (see hostStep). */
  private drain(): Promise<void> {
    this.draining ??= this.drainHeld().finally(() => {
      this.draining = null;
    });
    return this.draining;
  }

  private async drainHeld(): Promise<void> {
    const queue = this.device.queue;
    try {
      this.flush();
      // Work encoded while a readback is awaited joins the queue (flush holds it), so loop until empty.
      while (this.held.length) {
        const e = this.held[0];
        if (this.lost) throw this.lostError('the submission of held work');
        if (e.kind === 'commands') {
          this.device.pushErrorScope('validation');
          queue.writeBuffer(this.uniformRing, 0, e.uniforms);
          queue.submit([e.cmd]);
          this.counters.submits++;
          this.pendingErrors.push(this.device.popErrorScope().then((err) => (err ? `${err.message} (batch held kernels: ${e.kernels})` : null)));
        } else if (e.kind === 'write') {
          queue.writeBuffer(e.buffer, e.byteOffset, e.data);
        } else {
          const data = await (e.read ?? this.readNow(e.regions, 'a host step\'s readback'));
          for (const w of e.fn(data)) queue.writeBuffer(w.buffer, w.byteOffset, w.data.buffer, w.data.byteOffset, w.data.byteLength);
        }
        this.held.shift();
      }
    } catch (err) {
      // The held work depended on the step that failed: none of it can run.
      this.held = [];
      throw err;
    }
    if (this.trimAfterDrain) {
      this.trimAfterDrain = false;
      this.trim();
    }
  }

  // ---------------------------------------------------------------- profiling

  /**
   * Record every dispatch from now until stopProfile(). With `wall`, or on a device without
   * `timestamp-query`, dispatches are timed afterwards by replaying each alone (see profile.ts).
   */
  startProfile(opts: { wall?: boolean } = {}): void {
    if (this.profiler) throw new Error('startProfile: a profile is already running');
    if (this.held.length) throw new Error('startProfile: host steps are pending; await a sync first');
    this.flush();
    const stamps = !opts.wall && this.features.has('timestamp-query');
    this.profiler = new DispatchProfiler(this.device, stamps ? 'timestamp-query' : 'wall');
  }

  /** Wait for the profiled work and return one record per dispatch since startProfile(). */
  async stopProfile(): Promise<Profile> {
    const prof = this.profiler;
    if (!prof) throw new Error('stopProfile: no profile is running');
    try {
      await this.sync();
    } finally {
      this.profiler = null;
    }
    const out = await this.untilLost(prof.finish(this.uniformRing), 'the profile\'s readback');
    await this.throwPendingErrors('the profile\'s readback');
    return out;
  }

  /** Wait for all submitted work and raise any error it produced. */
  async sync(): Promise<void> {
    if (this.lost) throw this.lostError('a sync');
    if (this.held.length) await this.drain();
    this.flush();
    await this.untilLost(this.device.queue.onSubmittedWorkDone(), 'a sync');
    await this.throwPendingErrors('a sync');
  }

  private async throwPendingErrors(during: string): Promise<void> {
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    const msgs = (await this.untilLost(Promise.all(pending), during)).filter((m): m is string => m !== null);
    // A lost device's error scopes report nothing useful (or errors of the dead device): the loss is the error.
    if (this.lost) throw this.lostError(during);
    if (this.uncaptured) msgs.push(this.uncaptured);
    this.uncaptured = null;
    if (msgs.length) throw new Error(`WebGPU error: ${msgs.join('\n')}`);
  }

  // ---------------------------------------------------------------- device loss

  /** Whether the device has been lost (its `lost` promise resolved); every launch and wait now throws DeviceLostError. */
  get isLost(): boolean {
    return this.lost !== null;
  }

  private lostError(during: string): DeviceLostError {
    return new DeviceLostError(this.lost!.reason, this.lost!.message, during);
  }

  /**
   * `wait`, or a DeviceLostError as soon as the device is lost: a driver reset may leave a mapAsync or
   * onSubmittedWorkDone pending forever. A set of waiters rather than a race against one shared
   * promise: each race would leave a reaction (holding its result) on that never-settling promise.
   */
  private untilLost<T>(wait: Promise<T>, during: string): Promise<T> {
    if (this.lost) {
      wait.catch(() => {});
      return Promise.reject(this.lostError(during));
    }
    return new Promise<T>((resolve, reject) => {
      const onLost = () => reject(this.lostError(during));
      this.lostWaiters.add(onLost);
      wait.then(
        (v) => {
          this.lostWaiters.delete(onLost);
          resolve(v);
        },
        (e) => {
          this.lostWaiters.delete(onLost);
          // Dawn rejects a mapping on a lost device with a bare AbortError: name the cause instead.
          reject(this.lost ? this.lostError(during) : e);
        },
      );
    });
  }

  // ---------------------------------------------------------------- data movement

  /**
   * Upload into a buffer. queue.writeBuffer runs before any command buffer submitted after it, so
   * pending dispatches (which may still read the buffer's previous contents) are submitted first.
   */
  write(buffer: GPUBuffer, byteOffset: number, data: ArrayBufferView): void {
    if (this.lost) throw this.lostError('an upload');
    this.flush();
    if (this.held.length) {
      // Behind a host step: the upload waits its turn, with its own copy of the bytes.
      this.held.push({ kind: 'write', buffer, byteOffset, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() });
      return;
    }
    this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  async read(buffer: GPUBuffer, byteOffset: number, byteLength: number): Promise<ArrayBuffer> {
    return (await this.readRegions([{ buffer, byteOffset, byteLength }]))[0];
  }

  /**
   * Several buffer regions in ONE readback: each copied into its 4-byte-aligned place of one staging
   * buffer by one submit, then one map (a step's log values cost one wait, not one per value).
   */
  async readRegions(regions: readonly BufferRegion[]): Promise<ArrayBuffer[]> {
    if (this.lost) throw this.lostError('a readback');
    if (this.held.length) await this.drain();
    this.flush();
    const out = await this.readNow(regions, 'a readback');
    await this.throwPendingErrors('a readback');
    return out;
  }

  /** Copy `regions` out behind everything submitted so far and map them (nothing is flushed). */
  private async readNow(regions: readonly BufferRegion[], during: string): Promise<ArrayBuffer[]> {
    const at: number[] = [];
    let byteLength = 0;
    for (const r of regions) {
      at.push(byteLength);
      byteLength += Math.ceil(r.byteLength / 4) * 4;
    }
    const size = bucketSize(Math.ceil(byteLength / 4) * 4);
    const staging =
      this.stagingFree.get(size)?.pop() ??
      this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'staging' });
    const enc = this.device.createCommandEncoder();
    const len = byteLength;
    regions.forEach((r, i) => {
      const n = Math.ceil(r.byteLength / 4) * 4;
      if (n > 0) enc.copyBufferToBuffer(r.buffer, r.byteOffset, staging, at[i], n);
    });
    this.device.queue.submit([enc.finish()]);
    this.counters.readbacks++;
    try {
      await this.untilLost(staging.mapAsync(GPUMapMode.READ, 0, size), during);
    } catch (e) {
      await this.throwPendingErrors(during);
      throw e;
    }
    const mapped = staging.getMappedRange(0, len);
    const out = regions.map((r, i) => mapped.slice(at[i], at[i] + r.byteLength));
    staging.unmap();
    let list = this.stagingFree.get(size);
    if (!list) this.stagingFree.set(size, (list = []));
    list.push(staging);
    return out;
  }

  /** Release free pool buffers (and the bind groups that may point at them); behind held work, once it is drained. */
  trim(): void {
    // Held batches still reference free buffers' bind groups: the trim waits for the drain.
    if (this.held.length) {
      this.trimAfterDrain = true;
      return;
    }
    this.flush();
    this.bindGroups = [];
    this.bindGroupCount = 0;
    this.pool.trim();
  }

  memory(): PoolStats {
    return this.pool.snapshot();
  }

  destroy(): void {
    // Work for a lost device has nowhere to go. Held work (host steps no sync point reached) is
    // dropped with the device: nothing read its results.
    if (!this.lost) this.flush();
    this.device.destroy();
  }
}

function summarize(names: string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c > 1 ? `${n}×${c}` : n)).join(', ');
}

/** Split a 1-D workgroup count into a 2-D grid that fits the per-dimension limit. */
export function grid1d(workgroups: number, maxDim = 65535): [number, number] {
  const y = gridRows(workgroups, maxDim);
  return [Math.ceil(workgroups / y), y];
}

/** The rows (y) of grid1d's split, for a caller that writes the grid into an array it keeps. */
export function gridRows(workgroups: number, maxDim = 65535): number {
  return workgroups <= maxDim ? 1 : Math.ceil(workgroups / maxDim);
}
