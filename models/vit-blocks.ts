// The parts of DINO's vision_transformer.py (itself timm's layout), with its module and parameter
// names: PatchEmbed (`proj`), Attention (`qkv`, `proj`), Mlp (`fc1`, `fc2`), Block (`norm1`, `attn`,
// `norm2`, `mlp`). Linear layers get DINO's init via dinoLinear; LayerNorms start at 1 and 0.

import type { Engine, Rng, Tensor } from '../engine/index.js';
import { nn } from '../engine/index.js';
import { add, dropPath, gelu, linear, scaledDotProductAttention } from '../engine/ops/index.js';
import { dinoLinear } from './head-layers.js';

/** LayerNorm ε of DINO's and timm's ViTs (partial(nn.LayerNorm, eps=1e-6)). */
export const VIT_LN_EPS = 1e-6;

/**
 * Conv2d with kernel = stride = patch size: [B, C, H, W] → [B, D, H/p, W/p]. DINO leaves it at
 * PyTorch's default Conv2d init (its _init_weights touches only Linear and LayerNorm).
 */
export class PatchEmbed extends nn.Module {
  readonly proj: nn.Conv2d;

  constructor(engine: Engine, readonly patchSize: number, inChannels: number, embedDim: number, rng: Rng) {
    super();
    this.proj = this.registerModule('proj', new nn.Conv2d(engine, inChannels, embedDim, patchSize, { stride: patchSize }, rng));
  }

  /** x [B, C, H, W] → patch embeddings [B, D, H/p, W/p]. */
  forward(x: Tensor): Tensor {
    return this.proj.forward(x);
  }
}

/** Multi-head self-attention with one fused qkv projection (qkv_bias = True, as DINO's ViTs). */
export class Attention extends nn.Module {
  readonly qkv: nn.Linear;
  readonly proj: nn.Linear;

  constructor(engine: Engine, readonly dim: number, readonly numHeads: number, rng: Rng) {
    super();
    this.qkv = this.registerModule('qkv', dinoLinear(engine, dim, 3 * dim, rng));
    this.proj = this.registerModule('proj', dinoLinear(engine, dim, dim, rng));
  }

  /** x [B, N, D] → [B, N, D]. */
  forward(x: Tensor): Tensor {
    const [b, n, d] = x.shape;
    const h = this.numHeads;
    // q, k, v come from row blocks of the fused qkv weight (DINO's reshape(B, N, 3, H, d/H) order),
    // one GEMM each, rather than from slices of one fused output: a slice's backward builds a
    // zero-filled gradient of the whole [B, N, 3D] output, three per block, kept alive until the
    // step's scope ends; a weight slice's backward costs a [3D, D] one instead.
    const heads = (i: number) => {
      const w = this.qkv.weight.slice(0, i * d, (i + 1) * d);
      const bias = this.qkv.bias && this.qkv.bias.slice(0, i * d, (i + 1) * d);
      return linear(x, w, bias).reshape(b, n, h, d / h).transpose(1, 2);
    };
    const o = scaledDotProductAttention(heads(0), heads(1), heads(2));
    return this.proj.forward(o.transpose(1, 2).reshape(b, n, d));
  }
}

/** fc1 → GELU (exact erf form, nn.GELU's default) → fc2. */
export class Mlp extends nn.Module {
  readonly fc1: nn.Linear;
  readonly fc2: nn.Linear;

  constructor(engine: Engine, dim: number, hidden: number, rng: Rng) {
    super();
    this.fc1 = this.registerModule('fc1', dinoLinear(engine, dim, hidden, rng));
    this.fc2 = this.registerModule('fc2', dinoLinear(engine, hidden, dim, rng));
  }

  /** x [B, N, D] → [B, N, D]. */
  forward(x: Tensor): Tensor {
    return this.fc2.forward(gelu(this.fc1.forward(x)));
  }
}

/** Seeds of a block's two drop-path masks (attention branch, MLP branch), or null when inactive. */
export type DropPathSeeds = [number, number] | null;

/** Pre-norm transformer block: x + drop_path(attn(norm1(x))), then + drop_path(mlp(norm2(x))). */
export class Block extends nn.Module {
  readonly norm1: nn.LayerNorm;
  readonly attn: Attention;
  readonly norm2: nn.LayerNorm;
  readonly mlp: Mlp;

  constructor(engine: Engine, dim: number, numHeads: number, mlpRatio: number, readonly dropPathRate: number, rng: Rng) {
    super();
    this.norm1 = this.registerModule('norm1', new nn.LayerNorm(engine, dim, { eps: VIT_LN_EPS }));
    this.attn = this.registerModule('attn', new Attention(engine, dim, numHeads, rng));
    this.norm2 = this.registerModule('norm2', new nn.LayerNorm(engine, dim, { eps: VIT_LN_EPS }));
    this.mlp = this.registerModule('mlp', new Mlp(engine, dim, Math.trunc(dim * mlpRatio), rng));
  }

  /** `seeds`: drop-path is applied (with these seeds) only when given; the model passes null in eval mode. */
  forward(x: Tensor, seeds: DropPathSeeds = null): Tensor {
    const branch = (y: Tensor, seed: number | undefined) => (seeds ? dropPath(y, this.dropPathRate, seed!, true) : y);
    const h = add(x, branch(this.attn.forward(this.norm1.forward(x)), seeds?.[0]));
    return add(h, branch(this.mlp.forward(this.norm2.forward(h)), seeds?.[1]));
  }
}
