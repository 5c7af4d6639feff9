// iBOT's patch masks for masked image modelling (bytedance/ibot loader.py, ImageFolderMask): per
// image a prediction ratio is drawn, then rectangular blocks of random area and aspect ratio are
// placed (BEiT's block-wise masking) until that many patches are masked or ten placements in a row
// add nothing. The draws follow the reference one for one, so the same random stream gives the same
// masks (test/losses.test.ts replays a scripted stream through the reference and this file).

/** The draws the generator needs; `Rng` provides them. uniform() is in [0, 1), int(n) in [0, n). */
export interface RandomSource {
  uniform(): number;
  int(n: number): number;
}

export interface MaskingOptions {
  /**
   * Mean prediction ratio, or a list of them of which one is picked per image. HVP's default is
   * iBOT's `--pred_ratio 0 0.3 --pred_ratio_var 0 0.2`: half of the images get no mask, the other half
   * a ratio uniform in [0.1, 0.5].
   */
  predRatio?: number | number[];
  /** Half-width of the uniform draw around each ratio (0: the ratio itself). */
  predRatioVar?: number | number[];
  /** Range of block aspect ratios h/w, drawn log-uniformly (iBOT's pred_aspect_ratio = (0.3, 1/0.3)). */
  predAspectRatio?: [number, number];
  /** 'block' (iBOT's default) or 'rand' (that many patches drawn uniformly). */
  predShape?: 'block' | 'rand';
  /** Epochs before this get empty masks. */
  predStartEpoch?: number;
}

export interface MaskBlock {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function uniform(rng: RandomSource, a: number, b: number): number {
  return a + (b - a) * rng.uniform();
}

/** random.randint(a, b): both ends included. */
function randint(rng: RandomSource, a: number, b: number): number {
  return a + rng.int(b - a + 1);
}

/**
 * Blocks of random area in [(min(H,W)//3)², remaining] and log-uniform aspect ratio, at random
 * positions, until `high` patches are masked: a block is kept only if it masks at least one new
 * patch and does not overshoot. Returns the [H·W] row-major mask (1 = masked) and the blocks kept.
 */
export function blockMask(
  rng: RandomSource,
  height: number,
  width: number,
  high: number,
  logAspect: [number, number],
): { mask: Uint8Array; blocks: MaskBlock[] } {
  const mask = new Uint8Array(height * width);
  const blocks: MaskBlock[] = [];
  const low = Math.floor(Math.min(height, width) / 3) ** 2;
  let count = 0;
  while (count < high) {
    const maxPatches = high - count;
    let delta = 0;
    for (let attempt = 0; attempt < 10 && delta === 0; attempt++) {
      const area = uniform(rng, low, maxPatches);
      const aspect = Math.exp(uniform(rng, logAspect[0], logAspect[1]));
      const h = roundHalfEven(Math.sqrt(area * aspect));
      const w = roundHalfEven(Math.sqrt(area / aspect));
      if (!(w < width && h < height)) continue;
      const block = { top: randint(rng, 0, height - h), left: randint(rng, 0, width - w), height: h, width: w };
      const fresh = h * w - maskedIn(mask, width, block);
      if (fresh > 0 && fresh <= maxPatches) {
        delta = fill(mask, width, block);
        blocks.push(block);
      }
    }
    if (delta === 0) break;
    count += delta;
  }
  return { mask, blocks };
}

function maskedIn(mask: Uint8Array, width: number, b: MaskBlock): number {
  let n = 0;
  for (let i = b.top; i < b.top + b.height; i++) for (let j = b.left; j < b.left + b.width; j++) n += mask[i * width + j];
  return n;
}

/** Mask every patch of the block; returns how many were newly masked. */
function fill(mask: Uint8Array, width: number, b: MaskBlock): number {
  let n = 0;
  for (let i = b.top; i < b.top + b.height; i++) {
    for (let j = b.left; j < b.left + b.width; j++) {
      if (mask[i * width + j] === 0) {
        mask[i * width + j] = 1;
        n++;
      }
    }
  }
  return n;
}

/** int(high) patches drawn uniformly without replacement (iBOT's 'rand' shape; Fisher-Yates shuffle). */
export function randomMask(rng: RandomSource, height: number, width: number, high: number): Uint8Array {
  const n = height * width;
  const mask = new Uint8Array(n);
  mask.fill(1, n - Math.min(Math.trunc(high), n));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [mask[i], mask[j]] = [mask[j], mask[i]];
  }
  return mask;
}

/** iBOT's `--pred_ratio 0 0.3 --pred_ratio_var 0 0.2`, the setting HVP's iBOT runs use. */
const HVP_PRED_RATIO = [0, 0.3];
const HVP_PRED_RATIO_VAR = [0, 0.2];

export class BlockMaskingGenerator {
  readonly predRatios: number[];
  readonly predRatioVars: number[];
  readonly logAspect: [number, number];
  readonly predShape: 'block' | 'rand';
  readonly predStartEpoch: number;
  /** A single ratio draws without a choice() (as iBOT does for a scalar pred_ratio). */
  private readonly single: boolean;

  constructor(opts: MaskingOptions = {}) {
    const ratio = opts.predRatio ?? HVP_PRED_RATIO;
    const ratios = Array.isArray(ratio) ? ratio : [ratio];
    const v = opts.predRatioVar ?? (opts.predRatio === undefined ? HVP_PRED_RATIO_VAR : 0);
    const vars = Array.isArray(v) ? v : new Array<number>(ratios.length).fill(v);
    if (vars.length !== ratios.length) throw new Error(`BlockMaskingGenerator: ${vars.length} ratio variances for ${ratios.length} ratios`);
    ratios.forEach((r, i) => {
      if (!(vars[i] >= 0 && r >= vars[i] && r + vars[i] <= 1)) {
        throw new Error(`BlockMaskingGenerator: ratio ${r} ± ${vars[i]} must stay within [0, 1]`);
      }
    });
    const [a, b] = opts.predAspectRatio ?? [0.3, 1 / 0.3];
    if (!(a > 0 && b >= a)) throw new Error(`BlockMaskingGenerator: invalid aspect ratio range [${a}, ${b}]`);
    this.predRatios = ratios;
    this.predRatioVars = vars;
    this.single = ratios.length === 1;
    this.logAspect = [Math.log(a), Math.log(b)];
    this.predShape = opts.predShape ?? 'block';
    this.predStartEpoch = opts.predStartEpoch ?? 0;
  }

  /** ImageFolderMask.get_pred_ratio: one uniform draw per listed ratio (that has a variance), then a choice. */
  predRatio(rng: RandomSource, epoch?: number): number {
    if (epoch !== undefined && epoch < this.predStartEpoch) return 0;
    const drawn = this.predRatios.map((r, i) => (this.predRatioVars[i] > 0 ? uniform(rng, r - this.predRatioVars[i], r + this.predRatioVars[i]) : r));
    return this.single ? drawn[0] : drawn[rng.int(drawn.length)];
  }

  /** One image's mask over its height × width patch grid: [H·W] row-major, 1 = masked. */
  generate(rng: RandomSource, height: number, width: number, epoch?: number): Uint8Array {
    if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
      throw new Error(`BlockMaskingGenerator: invalid patch grid ${height}×${width}`);
    }
    const high = this.predRatio(rng, epoch) * height * width;
    if (this.predShape === 'rand') return randomMask(rng, height, width, high);
    return blockMask(rng, height, width, high, this.logAspect).mask;
  }
}
