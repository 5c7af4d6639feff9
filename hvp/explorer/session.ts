// The explorer's computation, shared by the page and by Node: a model (an `hvp pretrain` checkpoint's
// method, a frozen backbone from a torchvision or DINO export, or a fresh SimSiam), a handful of
// images, and training's own HVP machinery on them: views drawn and rendered on the GPU as a training
// step draws them, the selection forward, the hardest, easiest and a random combination per image,
// and hvpStep itself for live training. No DOM and no file system, so the page and the tests run the
// same code on navigator.gpu and on Dawn.

import { Rng, io, type Engine, type Tensor } from '../../engine/index.js';
import { checkpointMeta, loadCheckpointBytes } from '../../models/checkpoint-bytes.js';
import type { Image, ImageBatch } from '../data/types.js';
import { backboneFromBytes, type LoadedBackbone } from '../eval/backbone-bytes.js';
import { createMethod, type Method } from '../methods/index.js';
import { pairGroups, perViewOutputs } from '../methods/pair-method.js';
import { pairCombinations, readSelection, scoreSimSiam, selectCombination, type TableLike } from '../select/index.js';
import { DEFAULTS, storedConfig, validateConfig, type TrainConfig } from '../train/config.js';
import { drawCandidates, hvpStep, selectionForward, selectionViews } from '../train/hvp-step.js';
import { stepRng } from '../train/rng.js';
import type { ViewParams } from '../views/index.js';

/** What the page can change between scorings. */
export interface ViewSettings {
  /** Candidate views per image (V ≥ 2). */
  views: number;
  scaleMin: number;
  scaleMax: number;
  /** Seed of the view parameters and the random pick, as `--seed` of a run. */
  seed: number;
}

export interface ScoreResult {
  views: number;
  batch: number;
  channels: number;
  size: number;
  /** The rendered views, normalised as the network sees them: [V·B, C, size, size], view-major. */
  pixels: Float32Array;
  params: ViewParams[];
  /** The candidate pairs (view indices). */
  rows: number[][];
  /** scores[b][r]: image b's score of pair rows[r] (the method's per-sample loss; higher is harder). */
  scores: number[][];
  /** Per image, the index into `rows` of the hardest, the easiest and a random pair. */
  hardest: number[];
  easiest: number[];
  random: number[];
}

export interface SessionInfo {
  /** 'checkpoint' (an hvp method), 'backbone' (a frozen backbone from an export) or 'fresh'. */
  kind: 'checkpoint' | 'backbone' | 'fresh';
  /** The checkpoint's name (empty for a fresh model). */
  source: string;
  method: string;
  arch: string;
  channels: number;
  size: number;
  /** How pairs are scored, in words. */
  scoring: string;
  trainable: boolean;
  step: number;
}

/** Methods whose candidates are V views of one pipeline scored in pairs (DINO/iBOT load as a backbone). */
const PAIR_METHODS = ['simsiam', 'simclr'];
/** Live training runs at a fixed horizon, so the cosine rate barely moves over a few steps. */
const HORIZON = 1000;

/** A small SimSiam for live training from scratch: a narrow ResNet-18 on 28 px views. */
export function freshConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return validateConfig({
    ...DEFAULTS,
    method: 'simsiam',
    arch: 'resnet18',
    widths: [8, 16, 16, 32],
    smallImage: true,
    size: 28,
    dim: 64,
    predDim: 16,
    lr: 0.05,
    lrScaling: false,
    views: 4,
    ...over,
  });
}

/** Images packed into one batch, as the loader packs them. */
export function packImages(images: Image[], channels: number): ImageBatch {
  const offsets = new Uint32Array(images.length);
  let total = 0;
  images.forEach((im, i) => {
    if (im.pixels.length !== channels * im.height * im.width) {
      throw new Error(`explorer: image ${i} holds ${im.pixels.length} bytes, not ${channels}×${im.height}×${im.width} (the model takes ${channels} channels)`);
    }
    offsets[i] = total;
    total += im.pixels.length;
  });
  const pixels = new Uint8Array(total);
  images.forEach((im, i) => pixels.set(im.pixels, offsets[i]));
  return {
    pixels,
    offsets,
    heights: Uint32Array.from(images, (im) => im.height),
    widths: Uint32Array.from(images, (im) => im.width),
    channels,
    labels: Int32Array.from(images, (im) => im.label),
    indices: Int32Array.from(images, (_, i) => i),
  };
}

/** The input channels of a checkpoint's backbone, from its stem's weight. */
function stemChannels(bytes: Uint8Array, source: string): number {
  const { entries } = io.readSafetensorsHeader(bytes, bytes.length, source);
  for (const name of ['backbone.conv1.weight', 'backbone.patch_embed.proj.weight', 'conv1.weight', 'patch_embed.proj.weight']) {
    const stem = entries.get(name);
    if (stem?.shape.length === 4) return stem.shape[1];
  }
  throw new Error(`${source}: no stem weight ([backbone.]conv1.weight or patch_embed.proj.weight) tells the input channels`);
}

/**
 * The architecture of an export that records none (torchvision's and DINO's state dicts), from its
 * tensor names and shapes: bottleneck convs mean ResNet-50, a sixth layer3 block ResNet-34, and a
 * ViT's width names its size.
 */
export function guessArch(bytes: Uint8Array, source: string): string | undefined {
  const { entries } = io.readSafetensorsHeader(bytes, bytes.length, source);
  const has = (n: string) => entries.has(n) || entries.has(`backbone.${n}`);
  if (has('layer4.0.conv3.weight')) return 'resnet50';
  if (has('layer3.5.conv1.weight')) return 'resnet34';
  if (has('layer1.0.conv1.weight')) return 'resnet18';
  const qkv = entries.get('blocks.0.attn.qkv.weight') ?? entries.get('backbone.blocks.0.attn.qkv.weight');
  return qkv && ({ 192: 'vit_tiny', 384: 'vit_small', 768: 'vit_base' } as Record<number, string>)[qkv.shape[1]];
}

export class ExplorerSession {
  private method: Method | null = null;
  private backbone: LoadedBackbone | null = null;
  private batch: ImageBatch | null = null;
  private mean: readonly number[] = [];
  private std: readonly number[] = [];
  private step = 0;

  private constructor(
    readonly engine: Engine,
    private config: TrainConfig,
    readonly kind: SessionInfo['kind'],
    readonly channels: number,
    readonly source = '',
  ) {}

  /** A fresh SimSiam (random weights from `config.seed`). */
  static fresh(engine: Engine, channels: number, over: Partial<TrainConfig> = {}): ExplorerSession {
    const s = new ExplorerSession(engine, freshConfig(over), 'fresh', channels);
    s.method = s.build(s.config);
    return s;
  }

  /**
   * An `hvp pretrain` checkpoint of SimSiam or SimCLR becomes its method (heads, optimizer state and
   * all); any other safetensors (a DINO/iBOT checkpoint, a torchvision or DINO export) its frozen backbone.
   */
  static async load(engine: Engine, bytes: Uint8Array, source: string, opts: { arch?: string } = {}): Promise<ExplorerSession> {
    const { metadata } = io.readSafetensorsHeader(bytes, bytes.length, source);
    const channels = stemChannels(bytes, source);
    if (metadata.format_version !== undefined && PAIR_METHODS.includes(metadata.method)) {
      const config = storedConfig(checkpointMeta(bytes, source).config, source);
      const s = new ExplorerSession(engine, config, 'checkpoint', channels, source);
      s.method = s.build(config);
      await loadCheckpointBytes(bytes, source, { model: s.method.model, optimizer: s.method.optimizer });
      return s;
    }
    const loaded = await backboneFromBytes(engine, bytes, source, { arch: opts.arch ?? (metadata.arch ? undefined : guessArch(bytes, source)) });
    // Our checkpoints record the run's view size; an export none: ViTs at the 224 px they were trained
    // at, ResNets at our 28.
    const ours = metadata.format_version !== undefined ? storedConfig(checkpointMeta(bytes, source).config, source) : null;
    const size = ours?.size ?? (loaded.arch.startsWith('vit') ? 224 : DEFAULTS.size);
    const config = validateConfig({ ...DEFAULTS, arch: loaded.arch, size });
    const s = new ExplorerSession(engine, config, 'backbone', channels, source);
    s.backbone = loaded;
    return s;
  }

  info(): SessionInfo {
    const c = this.config;
    const scoring = this.method
      ? `${c.method} loss of the pair (selection forward with batch statistics)`
      : '−cos of the two views\' backbone features (eval mode)';
    return { kind: this.kind, source: this.source, method: this.method ? c.method : 'backbone only', arch: c.arch, channels: this.channels, size: c.size, scoring, trainable: !!this.method, step: this.step };
  }

  settings(): ViewSettings {
    return { views: this.config.views, scaleMin: this.config.scaleMin, scaleMax: this.config.scaleMax, seed: this.config.seed };
  }

  setImages(images: Image[], stats: { mean: readonly number[]; std: readonly number[] }): void {
    if (images.length < 2) throw new Error(`explorer: the selection forward normalises over the batch; give at least 2 images, got ${images.length}`);
    if (stats.mean.length !== this.channels || stats.std.length !== this.channels) {
      throw new Error(`explorer: mean/std have ${stats.mean.length}/${stats.std.length} values for a ${this.channels}-channel model`);
    }
    this.batch = packImages(images, this.channels);
    this.mean = stats.mean;
    this.std = stats.std;
  }

  /**
   * Apply view settings. V and the crop scale are part of a method's view groups, so changing them
   * rebuilds the method and carries its weights over (the optimizer's momentum starts again).
   */
  async configure(s: ViewSettings): Promise<void> {
    const next = validateConfig({ ...this.config, views: s.views, scaleMin: s.scaleMin, scaleMax: s.scaleMax, seed: s.seed });
    const regroup = next.views !== this.config.views || next.scaleMin !== this.config.scaleMin || next.scaleMax !== this.config.scaleMax;
    if (regroup && this.method) {
      const weights = await io.downloadTensors(this.method.model.stateDict());
      const method = this.build(next);
      io.loadTensorsInto(method.model, Object.entries(weights), { source: 'explorer' });
      this.method = method;
    }
    this.config = next;
  }

  /** The views the next training step would draw, every pair's score, and the picks per image. */
  async score(): Promise<ScoreResult> {
    const batch = this.requireBatch();
    const { engine, config: c } = this;
    const b = batch.labels.length;
    const ctx = { step: this.step, epoch: 0, totalSteps: HORIZON };
    return engine.scopeAsync(async () => {
      // The candidates hvpStep draws at this step, and its selection forward (or the backbone's −cos).
      const scorer = this.method ?? { groups: pairGroups(c, 'simsiam'), combinations: pairCombinations(c.views) };
      const cand = drawCandidates(engine, scorer, c, { mean: this.mean, std: this.std }, batch, this.step, stepRng(c.seed, this.step, 1));
      const [views] = cand.views;
      const [params] = cand.params;
      const rows = cand.rows;
      const scores = this.method ? selectionForward(engine, this.method, selectionViews(c, cand), cand.table, ctx) : this.backboneScores(views, cand.table);
      const pick = async (mode: 'hardest' | 'easiest' | 'random') =>
        Array.from((await readSelection(selectCombination(scores, mode, stepRng(c.seed, this.step, 1)))).choice);
      const flat = (await scores.toArray()) as Float32Array;
      return {
        views: c.views,
        batch: b,
        channels: batch.channels,
        size: c.size,
        pixels: (await views.toArray()) as Float32Array,
        params,
        rows,
        scores: Array.from({ length: b }, (_, i) => Array.from(flat.subarray(i * rows.length, (i + 1) * rows.length))),
        hardest: await pick('hardest'),
        easiest: await pick('easiest'),
        random: await pick('random'),
      };
    });
  }

  /** `steps` HVP training steps on the images (all of them one batch); the loss of each. */
  async train(steps: number): Promise<number[]> {
    const method = this.method;
    if (!method) throw new Error('explorer: a backbone-only checkpoint cannot train; load an hvp pretrain checkpoint or start a fresh SimSiam');
    const batch = this.requireBatch();
    const config = { ...this.config, batchSize: batch.labels.length };
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const ctx = { step: this.step, epoch: 0, totalSteps: HORIZON };
      const loss = await this.engine.scopeAsync(async () => {
        const r = await hvpStep({ engine: this.engine, method, config, mean: this.mean, std: this.std }, batch, ctx);
        return r.loss.item();
      });
      if (!Number.isFinite(loss)) throw new Error(`explorer: the loss became ${loss} at step ${this.step}; lower the learning rate`);
      losses.push(loss);
      this.step++;
    }
    return losses;
  }

  private build(config: TrainConfig): Method {
    return createMethod({ engine: this.engine, config, channels: this.channels, stepsPerEpoch: 1, totalSteps: HORIZON, rng: new Rng(config.seed) });
  }

  private requireBatch(): ImageBatch {
    if (!this.batch) throw new Error('explorer: no images yet (setImages first)');
    return this.batch;
  }

  private backboneScores(views: Tensor, rows: TableLike): Tensor {
    const { backbone } = this.backbone!;
    return this.engine.noGrad(() => {
      const [f] = perViewOutputs(views, this.config.views, (x) => [backbone.features(x)]);
      return scoreSimSiam(f, f, rows);
    });
  }
}
