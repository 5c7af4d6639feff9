// The augmentation pipelines of docs/method.md §4 as plain data: what each method's views draw. The sampler
// (params.ts) turns a pipeline into per-view parameters; the renderer never looks at a pipeline.

/** Name of an augmentation pipeline (SimSiam's, SimCLR's, DINO's globals and locals). */
export type PipelineName = 'simsiam' | 'simclr' | 'dino-global-1' | 'dino-global-2' | 'dino-local';
/** Every augmentation pipeline's name. */
export const PIPELINE_NAMES: readonly PipelineName[] = ['simsiam', 'simclr', 'dino-global-1', 'dino-global-2', 'dino-local'];

/** torchvision ColorJitter strengths, applied as a whole with probability p. */
export interface JitterSpec {
  p: number;
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** An augmentation pipeline as data: crop scale, flip, jitter, grayscale, blur and solarize probabilities. */
export interface ViewPipeline {
  name: PipelineName;
  /** Output side length in pixels (views are square). */
  size: number;
  /** RandomResizedCrop area fraction range and aspect-ratio range. */
  scale: readonly [number, number];
  ratio: readonly [number, number];
  flip: number;
  jitter: JitterSpec;
  grayscale: number;
  /** Probability of a Gaussian blur (σ uniform in `blurSigma`); 0 at 32 px and below. */
  blur: number;
  blurSigma: readonly [number, number];
  solarize: number;
}

/** Output size, channels and crop scale of a pipeline. */
export interface PipelineOptions {
  size: number;
  /** 1 (grey) or 3 (RGB): on grey images only brightness and contrast apply, and grayscale is moot. */
  channels: number;
  /** Overrides the pipeline's RandomResizedCrop scale (e.g. DINO's (0.25, 1) for long runs). */
  scale?: readonly [number, number];
}

type Recipe = Pick<ViewPipeline, 'scale' | 'jitter' | 'blur' | 'solarize'>;

const SIMSIAM_JITTER: JitterSpec = { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 };
// DINO's flip_and_color_jitter uses saturation 0.2.
const DINO_JITTER: JitterSpec = { ...SIMSIAM_JITTER, saturation: 0.2 };

const RECIPES: Record<PipelineName, Recipe> = {
  simsiam: { scale: [0.2, 1], jitter: SIMSIAM_JITTER, blur: 0.5, solarize: 0 },
  simclr: { scale: [0.2, 1], jitter: SIMSIAM_JITTER, blur: 0.5, solarize: 0 },
  'dino-global-1': { scale: [0.4, 1], jitter: DINO_JITTER, blur: 1.0, solarize: 0 },
  'dino-global-2': { scale: [0.4, 1], jitter: DINO_JITTER, blur: 0.1, solarize: 0.2 },
  'dino-local': { scale: [0.05, 0.4], jitter: DINO_JITTER, blur: 0.5, solarize: 0 },
};

/** Blur is part of the ImageNet recipes only: SimSiam's CIFAR setup (and docs/method.md §4) drop it at ≤ 32 px. */
export const MAX_SIZE_WITHOUT_BLUR = 32;

/** The augmentation pipeline `name` at a given size and channel count. */
export function viewPipeline(name: PipelineName, opts: PipelineOptions): ViewPipeline {
  const recipe = RECIPES[name];
  if (!recipe) throw new Error(`viewPipeline: unknown pipeline '${name}' (known: ${PIPELINE_NAMES.join(', ')})`);
  const { size, channels } = opts;
  if (!Number.isInteger(size) || size < 1) throw new Error(`viewPipeline(${name}): size ${size} must be a positive integer`);
  if (channels !== 1 && channels !== 3) throw new Error(`viewPipeline(${name}): channels must be 1 or 3, got ${channels}`);
  const scale = opts.scale ?? recipe.scale;
  if (!(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 1)) {
    throw new Error(`viewPipeline(${name}): scale [${scale.join(', ')}] must satisfy 0 < lo <= hi <= 1`);
  }
  const grey = channels === 1;
  return {
    name,
    size,
    scale: [scale[0], scale[1]],
    ratio: [3 / 4, 4 / 3],
    flip: 0.5,
    // Saturation and hue are identities on one channel; zero strengths make the sampler skip them, as
    // ColorJitter skips a factor whose range is [1, 1].
    jitter: grey ? { ...recipe.jitter, saturation: 0, hue: 0 } : { ...recipe.jitter },
    grayscale: grey ? 0 : 0.2,
    blur: size <= MAX_SIZE_WITHOUT_BLUR ? 0 : recipe.blur,
    blurSigma: [0.1, 2.0],
    solarize: recipe.solarize,
  };
}

/**
 * Kernel side of the blur for an output size: about 10% of it, made odd (SimCLR/BYOL's
 * int(0.1·size) with radius k//2, so 224 → 23, 96 → 9).
 */
export function blurKernelSize(size: number): number {
  return 2 * Math.floor(Math.floor(0.1 * size) / 2) + 1;
}
