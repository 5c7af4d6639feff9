// A pretraining run's configuration: one flat record, so that every value has exactly one flag
// (`batchSize` ↔ `--batch-size`) and one YAML key (`batch_size`). Presets (hvp/presets/*.yaml) are
// docs/method.md §5's reference settings; flags override them; the result is saved next to the run.

import { parse as parseYaml } from 'yaml';
import { BACKBONE_ARCHS, type BackboneArch } from '../../models/backbone.js';
import simsiamCifar from '../presets/simsiam-cifar10.yaml';
import simsiamFashion from '../presets/simsiam-fashion-mnist.yaml';
import simsiamImagenet from '../presets/simsiam-imagenet.yaml';
import simclrCifar from '../presets/simclr-cifar10.yaml';
import simclrFashion from '../presets/simclr-fashion-mnist.yaml';
import dinoImagenet from '../presets/dino-imagenet.yaml';
import dinoSmall from '../presets/dino-small.yaml';
import ibotSmall from '../presets/ibot-small.yaml';
import studyCifar from '../presets/study-cifar10.yaml';

/** The SSL methods. */
export const METHODS = ['simsiam', 'simclr', 'dino', 'ibot'] as const;
/** An SSL method's name. */
export type MethodName = (typeof METHODS)[number];
export const SELECT_MODES = ['hardest', 'easiest', 'random'] as const;
export type SelectMode = (typeof SELECT_MODES)[number];

/** Every option of a pretraining run (the CLI's flags, camel-cased). */
export interface TrainConfig {
  method: MethodName;
  /** Backbone: resnet18/34/50 or vit_tiny/small/base. */
  arch: BackboneArch;
  /** ResNet stage widths (empty = torchvision's). */
  widths: number[];
  /** 3×3 stride-1 stem without max-pool (28-32 px images). */
  smallImage: boolean;
  /** Zero the last BN of each residual block (every block starts as the identity), as SimSiam's code does. */
  zeroInitResidual: boolean;
  patchSize: number;
  dropPathRate: number;

  dataset: 'auto' | 'fashion-mnist' | 'mnist' | 'cifar10' | 'folder';
  /** Dataset directory; empty = the built-in Fashion-MNIST. */
  data: string;
  /** Use only the first N training images (0 = all). */
  trainLimit: number;
  /** Folder datasets: shorter side after decoding. */
  loadSize: number;

  epochs: number;
  /** Stop after this many steps in all (0 = epochs × steps per epoch). */
  maxSteps: number;
  batchSize: number;
  /**
   * Split each step's batch into K micro-batches of batchSize / K, each with its own forward and
   * backward, and step the optimizer once on their averaged gradients (docs/method.md, "Large batches").
   */
  gradAccumSteps: number;
  seed: number;

  optimizer: 'sgd' | 'adamw' | 'lars';
  /** LARS trust coefficient: a layer's step is scaled by larsEta · ‖w‖ / ‖g + wd·w‖. */
  larsEta: number;
  /** Base learning rate; the effective one is lr · batchSize / 256 when `lrScaling`. */
  lr: number;
  lrScaling: boolean;
  minLr: number;
  warmupEpochs: number;
  momentum: number;
  weightDecay: number;
  /** AdamW weight decay at the end of its cosine schedule (DINO); equal to weightDecay for none. */
  weightDecayEnd: number;
  /** Global gradient-norm clip (0 = off). */
  clipGrad: number;
  /** SimSiam: the predictor keeps the base learning rate. */
  fixPredLr: boolean;

  /** Output size of the (global) views. */
  size: number;
  /** RandomResizedCrop area range of the (global) views. */
  scaleMin: number;
  scaleMax: number;
  /** DINO/iBOT: size and area range of local crops, crops loaded per image, crops used per step. */
  localSize: number;
  localScaleMin: number;
  localScaleMax: number;
  localCrops: number;
  localCropsUsed: number;

  /** HVP: which combination to train on. `random` with views 2 is plain SSL training. */
  select: SelectMode;
  /** Candidate views per image (SimSiam/SimCLR) or global views (DINO/iBOT; 2 per slot with 4). */
  views: number;
  /** Score only K combinations drawn per step (0 = all). */
  limit: number;
  /** Score on views rendered at this size instead of `size` (0 = full size). */
  selectRes: number;
  /** Score on the pooled features after this stage ('stem', 'layer1'..'layer4', or a ViT block index); '' = full model. */
  selectLayer: string;
  /** View 0 is fixed; only its partner is chosen. */
  anchor: boolean;

  /** SimSiam projector/predictor, SimCLR projector widths; DINO/iBOT head outputs K. */
  dim: number;
  predDim: number;
  outDim: number;
  temperature: number;
  teacherTemp: number;
  warmupTeacherTemp: number;
  warmupTeacherTempEpochs: number;
  studentTemp: number;
  momentumTeacher: number;
  freezeLastLayer: number;
  normLastLayer: boolean;
  /** iBOT weights of the [CLS] and patch terms. */
  lambda1: number;
  lambda2: number;

  /** Run directory: config.yaml, log.jsonl, checkpoint.safetensors. */
  out: string;
  /** Log loss, lr, throughput, selections and view parameters every N steps. */
  logEvery: number;
  /** Also write the checkpoint every N steps (0 = only at epoch ends, the end and on SIGINT/SIGTERM). */
  saveEvery: number;
  /**
   * Logged steps whose index is a multiple of N also time their phases (times_ms: a GPU sync after
   * each phase); their time is left out of images/s. 0 = never.
   */
  timeEvery: number;
  /** Resume from out/checkpoint.safetensors, with the configuration stored in it (see RESUME_MUTABLE). */
  resume: boolean;
  /** Log every candidate combination's score for the first K samples of each logged step (the report's heat maps). */
  logSamples: number;
  /** k-NN monitor: top-1 of the backbone every N steps (0 = off), on a fixed bank and query subset. */
  knnEvery: number;
  /** The monitor's memory bank: the first N training images. */
  knnBank: number;
  /** The monitor's queries: the first N test images. */
  knnQueries: number;
  /** Data-parallel runs: let two ranks train on the same GPU (CPU adapters, tests) instead of stopping. */
  allowSharedDevice: boolean;
  /**
   * Data-parallel runs: batch norm takes its statistics over the global batch (every rank's share), in
   * training and in HVP's selection forward (PyTorch's SyncBatchNorm). Nothing to do on one process or
   * for a model without batch norm.
   */
  syncBn: boolean;
}

/** Every training option's default (the CLI's defaults). */
export const DEFAULTS: TrainConfig = {
  method: 'simsiam',
  arch: 'resnet18',
  widths: [],
  smallImage: true,
  zeroInitResidual: false,
  patchSize: 4,
  dropPathRate: 0,
  dataset: 'auto',
  data: '',
  trainLimit: 0,
  loadSize: 256,
  epochs: 1,
  maxSteps: 0,
  batchSize: 128,
  gradAccumSteps: 1,
  seed: 0,
  optimizer: 'sgd',
  larsEta: 0.001,
  lr: 0.05,
  lrScaling: true,
  minLr: 0,
  warmupEpochs: 0,
  momentum: 0.9,
  weightDecay: 1e-4,
  weightDecayEnd: 1e-4,
  clipGrad: 0,
  fixPredLr: true,
  size: 28,
  scaleMin: 0.2,
  scaleMax: 1,
  localSize: 12,
  localScaleMin: 0.05,
  localScaleMax: 0.4,
  localCrops: 0,
  localCropsUsed: 0,
  select: 'hardest',
  views: 4,
  limit: 0,
  selectRes: 0,
  selectLayer: '',
  anchor: false,
  dim: 2048,
  predDim: 512,
  outDim: 4096,
  temperature: 0.1,
  teacherTemp: 0.04,
  warmupTeacherTemp: 0.04,
  warmupTeacherTempEpochs: 0,
  studentTemp: 0.1,
  momentumTeacher: 0.996,
  freezeLastLayer: 1,
  normLastLayer: true,
  lambda1: 1,
  lambda2: 1,
  out: 'runs/pretrain',
  logEvery: 10,
  saveEvery: 0,
  timeEvery: 100,
  resume: false,
  logSamples: 4,
  knnEvery: 0,
  knnBank: 1000,
  knnQueries: 500,
  allowSharedDevice: false,
  syncBn: true,
};

/** Training presets (YAML text) by name. */
export const PRESETS: Record<string, string> = {
  'simsiam-fashion-mnist': simsiamFashion,
  'simsiam-cifar10': simsiamCifar,
  'simsiam-imagenet': simsiamImagenet,
  'simclr-cifar10': simclrCifar,
  'simclr-fashion-mnist': simclrFashion,
  'dino-imagenet': dinoImagenet,
  'dino-small': dinoSmall,
  'ibot-small': ibotSmall,
  'study-cifar10': studyCifar,
};

/**
 * Settings a resumed run may change: how long it runs, how often it logs and saves, where its directory
 * now is. The logging, saving and monitoring settings never touch the weights. Every other setting shapes the model, the data order, the views or a schedule, so a resumed run that
 * changed one would no longer be the run its checkpoint belongs to.
 */
export const RESUME_MUTABLE: readonly (keyof TrainConfig)[] = ['epochs', 'maxSteps', 'logEvery', 'timeEvery', 'saveEvery', 'out', 'resume', 'logSamples', 'knnEvery', 'knnBank', 'knnQueries', 'allowSharedDevice'];

/** A value as a flag would take it (`8,16,32,64`, `(none)`). */
function show(v: unknown): string {
  return Array.isArray(v) ? v.join(',') || '(none)' : v === '' ? '(none)' : String(v);
}

/** The settings of `c` that differ from the checkpoint's stored `saved`, outside RESUME_MUTABLE, as messages. */
export function resumeConflicts(saved: TrainConfig, c: TrainConfig): string[] {
  return (Object.keys(DEFAULTS) as (keyof TrainConfig)[])
    .filter((k) => !RESUME_MUTABLE.includes(k) && JSON.stringify(saved[k]) !== JSON.stringify(c[k]))
    .map((k) => `--${kebabKey(k)} is ${show(c[k])} but the checkpoint's run has ${show(saved[k])}`);
}

/** A checkpoint's stored configuration as a TrainConfig (stored keys are camelCase; unknown ones refused). */
export function storedConfig(stored: unknown, source: string): TrainConfig {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
    throw new Error(`${source}: the checkpoint holds no run configuration (metadata config is ${JSON.stringify(stored)})`);
  }
  return applyValues(DEFAULTS, stored as Record<string, unknown>, source);
}

/** The learning rate a run uses: the base rate, scaled linearly by batchSize / 256 when `lrScaling`. */
export function effectiveLr(c: TrainConfig): number {
  return c.lrScaling ? (c.lr * c.batchSize) / 256 : c.lr;
}

/** `batch_size` / `batch-size` → `batchSize`. */
export function camelKey(key: string): string {
  return key.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `batchSize` → `batch-size` (flags) or `batch_size` (YAML). */
export function kebabKey(key: string, sep = '-'): string {
  return key.replace(/[A-Z]/g, (c) => sep + c.toLowerCase());
}

/** Coerce one raw value (a YAML scalar or a flag's string) to the type of `key`'s default. */
export function coerce(key: keyof TrainConfig, raw: unknown, source: string): unknown {
  const def = DEFAULTS[key];
  const flag = source === 'flag' ? `--${kebabKey(key)}` : `${source}: ${kebabKey(key, '_')}`;
  if (Array.isArray(def)) {
    const parts = Array.isArray(raw) ? raw : String(raw).split(',').filter((s) => s.trim() !== '');
    const nums = parts.map(Number);
    if (!nums.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`${flag}: expects comma-separated positive integers, got '${raw}'`);
    return nums;
  }
  if (typeof def === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1' || raw === '') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new Error(`${flag}: expects true or false, got '${raw}'`);
  }
  if (typeof def === 'number') {
    const n = typeof raw === 'number' ? raw : Number(raw);
    if (!Number.isFinite(n) || raw === '' || raw === null) throw new Error(`${flag}: expects a number, got '${raw}'`);
    return n;
  }
  return raw === null || raw === undefined ? '' : String(raw);
}

/** Apply `values` (YAML keys or flag names, any case) over `base`, rejecting unknown keys. */
export function applyValues(base: TrainConfig, values: Record<string, unknown>, source: string): TrainConfig {
  const out: Record<string, unknown> = { ...base };
  for (const [rawKey, raw] of Object.entries(values)) {
    const key = camelKey(rawKey) as keyof TrainConfig;
    if (!(key in DEFAULTS)) throw new Error(`${source}: unknown setting '${rawKey}' (see hvp pretrain --help)`);
    out[key] = coerce(key, raw, source);
  }
  return out as unknown as TrainConfig;
}

export function parsePresetText(text: string, source: string): Record<string, unknown> {
  const doc = parseYaml(text) as unknown;
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${source}: a preset is a YAML mapping of settings`);
  return doc as Record<string, unknown>;
}

/** A built-in preset's settings over the defaults. */
export function presetConfig(name: string): TrainConfig {
  const text = PRESETS[name];
  if (text === undefined) throw new Error(`unknown preset '${name}'; built-in presets: ${Object.keys(PRESETS).join(', ')}`);
  return applyValues(DEFAULTS, parsePresetText(text, `preset ${name}`), `preset ${name}`);
}

/** Check the combination of settings; errors say which flag to change. */
export function validateConfig(c: TrainConfig): TrainConfig {
  const fail = (msg: string): never => {
    throw new Error(`invalid configuration: ${msg}`);
  };
  if (!METHODS.includes(c.method)) fail(`--method must be one of ${METHODS.join(', ')}, got '${c.method}'`);
  if (!BACKBONE_ARCHS.includes(c.arch)) fail(`--arch must be one of ${BACKBONE_ARCHS.join(', ')}, got '${c.arch}'`);
  if (!SELECT_MODES.includes(c.select)) fail(`--select must be one of ${SELECT_MODES.join(', ')}, got '${c.select}'`);
  if (!['sgd', 'adamw', 'lars'].includes(c.optimizer)) fail(`--optimizer must be sgd, adamw or lars, got '${c.optimizer}'`);
  if (!(c.larsEta > 0)) fail(`--lars-eta must be positive, got ${c.larsEta}`);
  for (const k of ['epochs', 'batchSize', 'size', 'logEvery', 'gradAccumSteps'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) fail(`--${kebabKey(k)} must be a positive integer, got ${c[k]}`);
  }
  for (const k of ['maxSteps', 'limit', 'selectRes', 'trainLimit', 'seed', 'localCrops', 'localCropsUsed', 'warmupEpochs', 'logSamples', 'timeEvery', 'knnEvery', 'knnBank', 'knnQueries', 'saveEvery'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) fail(`--${kebabKey(k)} must be a non-negative integer, got ${c[k]}`);
  }
  if (c.knnEvery > 0 && (c.knnBank < 20 || c.knnQueries < 1)) fail(`the k-NN monitor (k = 20) needs --knn-bank >= 20 and --knn-queries >= 1, got ${c.knnBank} and ${c.knnQueries}`);
  if (c.batchSize < 2) fail('--batch-size must be at least 2 (batch norm and contrastive losses need two samples)');
  if (c.batchSize % c.gradAccumSteps !== 0) {
    fail(`--batch-size (${c.batchSize}) must be divisible by --grad-accum-steps (${c.gradAccumSteps}): each micro-batch holds batch-size / grad-accum-steps images`);
  }
  if (c.batchSize / c.gradAccumSteps < 2) {
    fail(`--batch-size / --grad-accum-steps is ${c.batchSize / c.gradAccumSteps} images per micro-batch; batch norm and contrastive losses need at least 2`);
  }
  if (c.gradAccumSteps > 1 && c.method === 'ibot') fail('--grad-accum-steps > 1 is not supported for ibot (its patch masks are drawn per full batch); use 1');
  if (!(c.lr > 0)) fail(`--lr must be positive, got ${c.lr}`);
  if (!(c.scaleMin > 0 && c.scaleMin <= c.scaleMax && c.scaleMax <= 1)) fail(`need 0 < --scale-min <= --scale-max <= 1, got ${c.scaleMin}, ${c.scaleMax}`);
  const dinoLike = c.method === 'dino' || c.method === 'ibot';
  if (dinoLike) {
    if (c.views < 2 || c.views % 2 !== 0) fail(`--views counts global views for ${c.method} and must be even (2 per slot with 4), got ${c.views}`);
    if (c.localCropsUsed > c.localCrops) fail(`--local-crops-used (${c.localCropsUsed}) exceeds --local-crops (${c.localCrops})`);
    if (c.method === 'ibot' && !c.arch.startsWith('vit')) fail('iBOT masks patch tokens and needs a ViT: pass --arch vit_tiny (or vit_small, vit_base)');
    if (c.method === 'ibot' && c.localCropsUsed > 0 && c.localCropsUsed !== c.localCrops) fail(`iBOT keeps every local crop: set --local-crops-used to --local-crops (${c.localCrops}) or 0`);
    if (c.method === 'ibot' && c.size % c.patchSize !== 0) fail(`--size (${c.size}) must be a multiple of --patch-size (${c.patchSize}) for iBOT's patch masks`);
  } else if (!Number.isInteger(c.views) || c.views < 2) fail(`--views must be an integer >= 2, got ${c.views}`);
  if (c.arch.startsWith('vit') && ![4, 8, 16].includes(c.patchSize)) fail(`--patch-size must be 4, 8 or 16, got ${c.patchSize}`);
  if (c.selectRes > 0 && c.selectRes >= c.size) fail(`--select-res (${c.selectRes}) must be smaller than --size (${c.size})`);
  if (c.selectRes > 0 && c.method === 'ibot') fail(`--select-res (${c.selectRes}) does not apply to iBOT: its patch masks are drawn for --size (${c.size}), the same masks in scoring and training; drop --select-res`);
  if (c.anchor && dinoLike) fail(`--anchor fixes view 0 of a pair; it applies to simsiam and simclr, not ${c.method}`);
  if (c.selectLayer && dinoLike) fail(`--select-layer scores pairs by feature similarity; it applies to simsiam and simclr, not ${c.method}`);
  if (c.method === 'simsiam' && c.dim % 1 !== 0) fail('--dim must be an integer');
  return c;
}
