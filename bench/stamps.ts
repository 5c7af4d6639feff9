// GPU timestamps written between submissions: each mark is an empty compute pass whose only job is
// its end-of-pass timestamp. Dawn writes it once the commands submitted before it have completed,
// so two marks around a submission bracket that submission's execution on the GPU.

export class GpuStamps {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly readback: GPUBuffer;

  /** Room for `pairs` (start, end) pairs. */
  constructor(
    private readonly device: GPUDevice,
    private readonly pairs: number,
  ) {
    const count = 2 * pairs;
    this.querySet = device.createQuerySet({ type: 'timestamp', count, label: 'bench-stamps' });
    this.resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readback = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Submit a mark that writes timestamp `index`. */
  write(index: number): void {
    const enc = this.device.createCommandEncoder({ label: 'bench-stamp' });
    enc.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: index } }).end();
    this.device.queue.submit([enc.finish()]);
  }

  /** Milliseconds from each even timestamp to the next odd one, once all marks have been written. */
  async intervals(): Promise<number[]> {
    const enc = this.device.createCommandEncoder({ label: 'bench-stamp-resolve' });
    enc.resolveQuerySet(this.querySet, 0, 2 * this.pairs, this.resolve, 0);
    enc.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16 * this.pairs);
    this.device.queue.submit([enc.finish()]);
    await this.readback.mapAsync(GPUMapMode.READ);
    const ns = new BigUint64Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    return stampIntervals(ns);
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
    this.readback.destroy();
  }
}

/**
 * Milliseconds from the start to the end timestamp of each pair of `ns`. BigInt differences are
 * signed, so an end before its start reads as a negative interval (not a wrapped-around huge one),
 * which timing.ts's check rejects.
 */
export function stampIntervals(ns: ArrayLike<bigint>): number[] {
  return Array.from({ length: Math.floor(ns.length / 2) }, (_, i) => Number(ns[2 * i + 1] - ns[2 * i]) / 1e6);
}
