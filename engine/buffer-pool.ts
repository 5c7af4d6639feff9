// A size-bucketed pool of storage buffers. A training step allocates and frees the same sizes in the
// same order every iteration, so after the first step every request is served from the free lists and
// the step creates no new GPU buffers. Each request gets the free buffer of lowest id: which buffer
// an op gets then depends only on which buffers are free, not on the order they were freed in, so a
// steady-state step binds the same buffers as the last one and creates no bind groups (with a
// last-in-first-out list, gradients freed during backward permute the buffers from step to step).

/**
 * Round a byte size up to its bucket: four buckets per power of two keep waste under 25% while letting
 * nearby sizes (e.g. batch-dependent shapes) share buffers.
 */
export function bucketSize(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  const pow = 2 ** Math.floor(Math.log2(bytes));
  const quarter = pow / 4;
  return Math.ceil(bytes / quarter) * quarter;
}

export interface PoolStats {
  /** GPU buffers created since the pool was made. */
  created: number;
  /** Buffers currently handed out. */
  inUse: number;
  /** Buffers waiting in free lists. */
  free: number;
  /** Bytes of all buffers the pool owns (in use and free). */
  bytesAllocated: number;
  /** Highest bytesInUse seen since the last resetPeak(). */
  peakBytesInUse: number;
  bytesInUse: number;
}

/** Free buffers of one size, as a binary min-heap on their ids. */
class FreeList {
  private ids: number[] = [];
  private bufs: GPUBuffer[] = [];

  get length(): number {
    return this.ids.length;
  }

  push(id: number, buf: GPUBuffer): void {
    const ids = this.ids;
    const bufs = this.bufs;
    let i = ids.length;
    ids.push(id);
    bufs.push(buf);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (ids[up] <= id) break;
      ids[i] = ids[up];
      bufs[i] = bufs[up];
      i = up;
    }
    ids[i] = id;
    bufs[i] = buf;
  }

  /** The buffer of lowest id, or undefined when empty. */
  pop(): GPUBuffer | undefined {
    const ids = this.ids;
    const bufs = this.bufs;
    const n = ids.length - 1;
    if (n < 0) return undefined;
    const top = bufs[0];
    const id = ids[n];
    const buf = bufs[n];
    ids.pop();
    bufs.pop();
    if (n > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ids[c + 1] < ids[c]) c++;
        if (ids[c] >= id) break;
        ids[i] = ids[c];
        bufs[i] = bufs[c];
        i = c;
      }
      ids[i] = id;
      bufs[i] = buf;
    }
    return top;
  }

  drain(): GPUBuffer[] {
    const out = this.bufs;
    this.ids = [];
    this.bufs = [];
    return out;
  }
}

export class BufferPool {
  private freeLists = new Map<number, FreeList>();
  private stats: PoolStats = { created: 0, inUse: 0, free: 0, bytesAllocated: 0, peakBytesInUse: 0, bytesInUse: 0 };
  private nextId = 0;
  /** Stable ids for bind-group cache keys. */
  readonly ids = new WeakMap<GPUBuffer, number>();
  /** Bucket sizes: GPUBuffer.size is a native getter, slower to call on every release. */
  private sizes = new WeakMap<GPUBuffer, number>();

  constructor(private device: GPUDevice, private maxBufferSize: number) {}

  acquire(bytes: number): GPUBuffer {
    const size = bucketSize(Math.max(bytes, 4));
    if (size > this.maxBufferSize) {
      throw new Error(`buffer of ${bytes} bytes exceeds the device's maxStorageBufferBindingSize (${this.maxBufferSize})`);
    }
    const list = this.freeLists.get(size);
    let buf = list?.pop();
    if (buf) {
      this.stats.free--;
    } else {
      buf = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: `pool:${size}` });
      this.ids.set(buf, this.nextId++);
      this.sizes.set(buf, size);
      this.stats.created++;
      this.stats.bytesAllocated += size;
    }
    this.stats.inUse++;
    this.stats.bytesInUse += size;
    if (this.stats.bytesInUse > this.stats.peakBytesInUse) this.stats.peakBytesInUse = this.stats.bytesInUse;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf)!;
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = new FreeList()));
    list.push(this.ids.get(buf)!, buf);
    this.stats.inUse--;
    this.stats.free++;
    this.stats.bytesInUse -= size;
  }

  /** Destroy every free buffer (returns the number destroyed). Callers must drop caches that reference them. */
  trim(): number {
    let n = 0;
    for (const list of this.freeLists.values()) {
      for (const b of list.drain()) {
        this.stats.bytesAllocated -= b.size;
        b.destroy();
        n++;
      }
    }
    this.freeLists.clear();
    this.stats.free = 0;
    return n;
  }

  resetPeak(): void {
    this.stats.peakBytesInUse = this.stats.bytesInUse;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
