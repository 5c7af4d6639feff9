// Per-channel mean/std of 8-bit pixels, from a 256-bin histogram per channel: one pass of integer
// increments over the data (60k × 784 bytes in well under a second), then exact sums over 256 bins
// in float64, so the statistics do not drift with the dataset's size.

/**
 * Statistics of pixels scaled to [0, 1]. The data is `count` records of `stride` bytes; record r's
 * channel c starts at `start + r * stride + c * plane` and holds `plane` bytes.
 */
export function pixelStats(
  bytes: Uint8Array,
  layout: { count: number; channels: number; plane: number; stride: number; start?: number },
): { mean: number[]; std: number[] } {
  const { count, channels, plane, stride, start = 0 } = layout;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    const hist = new Uint32Array(256); // in-memory data sets hold far fewer than 2^32 pixels per channel
    for (let r = 0; r < count; r++) {
      const base = start + r * stride + c * plane;
      for (let k = 0; k < plane; k++) hist[bytes[base + k]]++;
    }
    let n = 0;
    let sum = 0;
    let sumSq = 0;
    for (let v = 0; v < 256; v++) {
      n += hist[v];
      sum += hist[v] * v;
      sumSq += hist[v] * v * v;
    }
    const m = sum / Math.max(n, 1) / 255;
    mean.push(m);
    std.push(Math.sqrt(Math.max(sumSq / Math.max(n, 1) / (255 * 255) - m * m, 0)));
  }
  return { mean, std };
}
