// DINO's cosine_scheduler, value for value: a linear warm-up from `startWarmup` to `base` over
// `warmupEpochs` (np.linspace, both ends included), then a half cosine from `base` down to `final`.
// One value per iteration; used for the learning rate, the weight decay and the teacher momentum.

/** DINO's cosine_scheduler: a linear warm-up, then a half cosine from `base` to `final`; one value per iteration. */
export function cosineSchedule(
  base: number,
  final: number,
  epochs: number,
  itersPerEpoch: number,
  warmupEpochs = 0,
  startWarmup = 0,
): Float64Array {
  const total = epochs * itersPerEpoch;
  const warmup = warmupEpochs * itersPerEpoch;
  if (!Number.isInteger(total) || !Number.isInteger(warmup) || total < 0 || warmup < 0 || warmup > total) {
    throw new Error(
      `cosineSchedule: ${epochs} epochs × ${itersPerEpoch} iterations with ${warmupEpochs} warm-up epochs do not give whole, consistent step counts`,
    );
  }
  const out = new Float64Array(total);
  // np.linspace(start, stop, n): i·step + start with step = (stop − start)/(n − 1), the last value exactly stop.
  const step = (base - startWarmup) / (warmup - 1);
  for (let i = 0; i < warmup; i++) out[i] = warmup === 1 ? startWarmup : i * step + startWarmup;
  if (warmup > 1) out[warmup - 1] = base;
  const len = total - warmup;
  for (let i = 0; i < len; i++) {
    out[warmup + i] = final + 0.5 * (base - final) * (1 + Math.cos((Math.PI * i) / len));
  }
  return out;
}
