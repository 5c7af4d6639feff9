// Vision Transformers (Dosovitskiy et al. 2021) in DINO's layout (facebookresearch/dino,
// vision_transformer.py, itself timm's): parameter names `cls_token`, `pos_embed`,
// `patch_embed.proj.*`, `blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*`, `norm.*`,
// `head.*`, and iBOT's `masked_embed`, so state dicts move to and from DINO/iBOT checkpoints one to one.
// The positional embedding is resized to every input's patch grid (interpolate_pos_encoding), so
// 224 px global and 96 px local crops share weights.

import type { Engine, Rng, Tensor } from '../engine/index.js';
import { nn } from '../engine/index.js';
import { add, bicubicOutputSize, concat, interpolateBicubic, where } from '../engine/ops/index.js';
import { Block, PatchEmbed, VIT_LN_EPS, type DropPathSeeds } from './vit-blocks.js';
import { dinoLinear } from './head-layers.js';

/** Image size, patch size, channels and drop-path rate of a ViT. */
export interface ViTOptions {
  patchSize: 16 | 8 | 4;
  /** Size of the square training images; the stored positional embedding has (imgSize/patchSize)² + 1 rows. */
  imgSize?: number;
  inChannels?: number;
  /** Stochastic depth of the last block (DINO's drop_path_rate); block i gets rate·i/(depth − 1). */
  dropPathRate?: number;
  /** 0: no head, forward returns the CLS features; > 0: a Linear head to this many logits. */
  numClasses?: number;
  /** iBOT's masked_im_modeling: adds the `masked_embed` parameter that forwardTokens' mask uses. */
  maskedImModeling?: boolean;
}

interface Arch {
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
}

/** Options of a ViT forward: drop-path seeds. */
export interface ViTForwardOptions {
  /** Draws the drop-path seeds; required in training mode when dropPathRate > 0. */
  rng?: Rng;
}

/** Options of a ViT forward that returns every token (masks for iBOT). */
export interface ViTTokenOptions extends ViTForwardOptions {
  /**
   * iBOT's patch mask, [B, P] or [B, gh, gw] in row-major patch order: an f32 tensor (nonzero =
   * masked) or CPU booleans/numbers. Masked patch embeddings are replaced by `masked_embed` before
   * the positional embedding is added.
   */
  mask?: Tensor | ArrayLike<boolean | number>;
}

/** Options of a ViT's pooled features. */
export interface ViTFeatureOptions extends ViTForwardOptions {
  /** Index of the last block run (default: the last one). */
  upTo?: number;
}

/** One stage of the forward (token preparation, a block, the final norm, ...). */
type Step = (t: Tensor) => Tensor;

/** A Vision Transformer with timm/DINO's parameter names. */
export class VisionTransformer extends nn.Module {
  readonly cls_token: Tensor;
  readonly pos_embed: Tensor;
  readonly masked_embed: Tensor | null;
  readonly patch_embed: PatchEmbed;
  readonly blocks: Block[];
  readonly norm: nn.LayerNorm;
  readonly head: nn.Linear | null;
  /** Width of the features (embed dim): 192, 384, 768. */
  readonly featureDim: number;
  /** Side of the stored positional embedding's patch grid. */
  readonly gridSize: number;
  readonly options: Readonly<Required<ViTOptions>>;

  constructor(private readonly engine: Engine, readonly arch: string, a: Arch, opts: ViTOptions, rng: Rng) {
    super();
    const o = (this.options = checkOptions(arch, opts));
    const d = (this.featureDim = a.embedDim);
    this.gridSize = o.imgSize / o.patchSize;
    // DINO draws both with trunc_normal_(std=0.02), whose cut at ±2 (absolute) never triggers.
    this.cls_token = this.registerParameter('cls_token', engine.randn([1, 1, d], rng, 0.02));
    this.pos_embed = this.registerParameter('pos_embed', engine.randn([1, this.gridSize ** 2 + 1, d], rng, 0.02));
    this.masked_embed = o.maskedImModeling ? this.registerParameter('masked_embed', engine.zeros([1, d])) : null;
    this.patch_embed = this.registerModule('patch_embed', new PatchEmbed(engine, o.patchSize, o.inChannels, d, rng));
    const blocks = new nn.Module();
    this.blocks = [...Array(a.depth).keys()].map((i) => {
      const rate = a.depth > 1 ? (o.dropPathRate * i) / (a.depth - 1) : 0; // torch.linspace(0, rate, depth)
      return blocks.registerModule(String(i), new Block(engine, d, a.numHeads, a.mlpRatio, rate, rng));
    });
    this.registerModule('blocks', blocks);
    this.norm = this.registerModule('norm', new nn.LayerNorm(engine, d, { eps: VIT_LN_EPS }));
    this.head = o.numClasses > 0 ? this.registerModule('head', dinoLinear(engine, d, o.numClasses, rng)) : null;
  }

  /** CLS features [B, D] after the final norm, or logits [B, numClasses] when the model has a head. */
  forward(x: Tensor, opts: ViTForwardOptions = {}): Tensor {
    const run = this.runner(x);
    const tokens = this.forwardTokens(x, opts);
    const cls = run(tokens, (t) => t.slice(1, 0, 1).reshape(t.shape[0], this.featureDim));
    return this.head ? run(cls, (t) => this.head!.forward(t)) : cls;
  }

  /** Every token [B, 1 + P, D] after the final norm: CLS first, then the patches in row-major order. */
  forwardTokens(x: Tensor, opts: ViTTokenOptions = {}): Tensor {
    const run = this.runner(x);
    const h = this.runBlocks(x, this.blocks.length - 1, opts);
    return run(h, (t) => this.norm.forward(t));
  }

  /**
   * CLS token [B, D] of block `upTo`'s output (no final norm); later blocks are not computed: the
   * early exit of HVP's intermediate-layer selection.
   */
  forwardFeatures(x: Tensor, opts: ViTFeatureOptions = {}): Tensor {
    const upTo = opts.upTo ?? this.blocks.length - 1;
    if (!Number.isInteger(upTo) || upTo < 0 || upTo >= this.blocks.length) {
      throw new Error(`${this.arch}.forwardFeatures: upTo must be a block index in [0, ${this.blocks.length - 1}], got ${upTo}`);
    }
    const h = this.runBlocks(x, upTo, opts);
    return this.runner(x)(h, (t) => t.slice(1, 0, 1).reshape(t.shape[0], this.featureDim));
  }

  /**
   * The positional embedding [1, 1 + gh·gw, D] for a gh × gw patch grid: the stored one when the
   * grid is the stored one, else DINO's interpolate_pos_encoding. DINO passes
   * scale_factor = (g' + 0.1)/g to F.interpolate (g = stored side, g' = new side), so PyTorch's output
   * size is ⌊g·(g' + 0.1)/g⌋ = g' (the 0.1 guards against g·(g'/g) rounding to g' − ε), while output
   * pixel o samples the old grid at (o + 0.5)·g/(g' + 0.1) − 0.5, not at (o + 0.5)·g/g' − 0.5 as a
   * resize to size g' would: we pass the same scale factor, so both mappings agree.
   */
  posEncoding(gh: number, gw: number): Tensor {
    const g = this.gridSize;
    if (gh === g && gw === g) return this.pos_embed;
    const d = this.featureDim;
    const n = g * g;
    const scale: [number, number] = [(gh + 0.1) / Math.sqrt(n), (gw + 0.1) / Math.sqrt(n)];
    if (bicubicOutputSize(g, scale[0]) !== gh || bicubicOutputSize(g, scale[1]) !== gw) {
      throw new Error(`${this.arch}: cannot resize the ${g}×${g} positional grid to ${gh}×${gw}`);
    }
    const grid = this.pos_embed.slice(1, 1, n + 1).reshape(1, g, g, d).permute(0, 3, 1, 2);
    const resized = interpolateBicubic(grid, gh, gw, { scaleFactor: scale });
    return concat([this.pos_embed.slice(1, 0, 1), resized.permute(0, 2, 3, 1).reshape(1, gh * gw, d)], 1);
  }

  /** Patch embedding (+ mask), CLS token, positional embedding, then blocks 0..last. */
  private runBlocks(x: Tensor, last: number, opts: ViTTokenOptions): Tensor {
    const run = this.runner(x);
    const seeds = this.dropPathSeeds(last, opts.rng);
    let h = run(x, (t) => this.prepareTokens(t, opts.mask));
    for (let i = 0; i <= last; i++) h = run(h, (t) => this.blocks[i].forward(t, seeds[i]));
    return h;
  }

  private prepareTokens(x: Tensor, mask: ViTTokenOptions['mask']): Tensor {
    const c = this.options.inChannels;
    const p = this.options.patchSize;
    if (x.ndim !== 4 || x.shape[1] !== c || x.shape[2] < p || x.shape[3] < p) {
      throw new Error(`${this.arch}: expects input [B, ${c}, H, W] with H, W ≥ ${p}, got ${x}`);
    }
    const b = x.shape[0];
    const emb = this.patch_embed.forward(x); // [B, D, gh, gw]
    const [gh, gw] = emb.shape.slice(2);
    let patches = emb.flatten(2).transpose(1, 2); // [B, P, D]
    if (mask !== undefined) patches = where(this.maskTensor(mask, b, gh * gw), this.maskedEmbed(), patches);
    const tokens = concat([this.cls_token.expand(b, 1, this.featureDim), patches], 1);
    return add(tokens, this.posEncoding(gh, gw));
  }

  private maskedEmbed(): Tensor {
    if (!this.masked_embed) throw new Error(`${this.arch}: a patch mask needs the model built with maskedImModeling: true`);
    return this.masked_embed;
  }

  /** The mask as an f32 [B, P, 1] (nonzero = masked) that broadcasts over the embedding. */
  private maskTensor(mask: NonNullable<ViTTokenOptions['mask']>, b: number, p: number): Tensor {
    const want = `[${b}, ${p}] or [${b}, gh, gw] with gh·gw = ${p}`;
    if (!('engine' in mask)) {
      if (mask.length !== b * p) throw new Error(`${this.arch}: mask of ${mask.length} values, expected ${want}`);
      return this.engine.tensor(Float32Array.from(mask as ArrayLike<number>, (v) => (v ? 1 : 0)), [b, p, 1]);
    }
    if (mask.dtype !== 'f32' || mask.shape[0] !== b || mask.size !== b * p || mask.ndim < 2 || mask.ndim > 3) {
      throw new Error(`${this.arch}: mask ${mask} must be f32 ${want}`);
    }
    return mask.reshape(b, p, 1);
  }

  /** Per block: its two drop-path seeds, drawn from rng in block order, or null when it drops nothing. */
  private dropPathSeeds(last: number, rng: Rng | undefined): DropPathSeeds[] {
    return this.blocks.slice(0, last + 1).map((blk) => {
      if (!this.training || blk.dropPathRate === 0) return null;
      if (!rng) throw new Error(`${this.arch}: training with dropPathRate ${this.options.dropPathRate} needs an rng (forward(x, { rng }))`);
      return [rng.u32(), rng.u32()];
    });
  }

  /**
   * How to apply one stage: with a tape, plainly (the tape holds the activations); without one (no
   * gradient wanted: evaluation, HVP's selection forward), inside a scope that frees the stage's
   * intermediates, and the stage's input once consumed unless it is the caller's x. So a
   * selection forward keeps about one block's activations alive, not all twelve.
   */
  private runner(x: Tensor): (h: Tensor, f: Step) => Tensor {
    const tape = this.engine.gradEnabled && (x.requiresGrad || this.parameters().some((t) => t.requiresGrad));
    if (tape) return (h, f) => f(h);
    return (h, f) => {
      const out = this.engine.scope(() => f(h));
      if (h !== x && h !== out) h.dispose();
      return out;
    };
  }
}

function checkOptions(arch: string, opts: ViTOptions): Required<ViTOptions> {
  const o = { imgSize: 224, inChannels: 3, dropPathRate: 0, numClasses: 0, maskedImModeling: false, ...opts };
  const positiveInt = (v: number) => Number.isInteger(v) && v >= 1;
  if (![16, 8, 4].includes(o.patchSize)) throw new Error(`${arch}: patchSize must be 16, 8 or 4, got ${o.patchSize}`);
  if (!positiveInt(o.imgSize) || o.imgSize % o.patchSize !== 0) {
    throw new Error(`${arch}: imgSize ${o.imgSize} must be a positive multiple of patchSize ${o.patchSize}`);
  }
  if (!positiveInt(o.inChannels)) throw new Error(`${arch}: inChannels must be a positive integer, got ${o.inChannels}`);
  if (!Number.isInteger(o.numClasses) || o.numClasses < 0) throw new Error(`${arch}: numClasses must be ≥ 0, got ${o.numClasses}`);
  if (!(o.dropPathRate >= 0 && o.dropPathRate < 1)) throw new Error(`${arch}: dropPathRate must be in [0, 1), got ${o.dropPathRate}`);
  return o;
}

const VIT_TINY: Arch = { embedDim: 192, depth: 12, numHeads: 3, mlpRatio: 4 };
const VIT_SMALL: Arch = { embedDim: 384, depth: 12, numHeads: 6, mlpRatio: 4 };
const VIT_BASE: Arch = { embedDim: 768, depth: 12, numHeads: 12, mlpRatio: 4 };

/** ViT-Ti (192 wide, 12 blocks, 3 heads). */
export function vitTiny(engine: Engine, opts: ViTOptions, rng: Rng): VisionTransformer {
  return new VisionTransformer(engine, `vit_tiny/${opts.patchSize}`, VIT_TINY, opts, rng);
}

/** ViT-S (384 wide, 12 blocks, 6 heads). */
export function vitSmall(engine: Engine, opts: ViTOptions, rng: Rng): VisionTransformer {
  return new VisionTransformer(engine, `vit_small/${opts.patchSize}`, VIT_SMALL, opts, rng);
}

/** ViT-B (768 wide, 12 blocks, 12 heads). */
export function vitBase(engine: Engine, opts: ViTOptions, rng: Rng): VisionTransformer {
  return new VisionTransformer(engine, `vit_base/${opts.patchSize}`, VIT_BASE, opts, rng);
}
