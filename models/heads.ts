// Projection and prediction heads of the four SSL methods, one class each (lightly's heads.py layout),
// with the parameter names of the reference implementations so that checkpoints move both ways:
// - SimSiamProjector: facebookresearch/simsiam's `encoder.fc` Sequential: `0.weight`, `1.*` (BN),
//   `3.weight`, `4.*` (BN), `6.weight`, `6.bias`, `7.running_*` (BN without affine). Mounted as
//   `projector` its names read `projector.0.weight`, ...; as a ResNet's `fc`, `fc.0.weight`, ...
// - SimSiamPredictor: simsiam's `predictor`: `0.weight`, `1.*` (BN), `3.weight`, `3.bias`.
// - SimClrProjector: lightly's SimCLRProjectionHead (2 layers with BN): `0.weight`, `1.*`, `3.weight`, `3.bias`.
// - DinoHead: DINO's DINOHead: `mlp.0.*`, `mlp.2.*`, `mlp.4.*` (with BN: `mlp.0`, `mlp.1`, `mlp.3`,
//   `mlp.4`, `mlp.6`), `last_layer.weight_g`, `last_layer.weight_v`.
// - IbotHead: iBOT's iBOTHead on [CLS] and patch tokens; a non-shared patch layer is `last_layer2.*`.

import type { Engine, Rng, Tensor } from '../engine/index.js';
import { nn } from '../engine/index.js';
import { gelu, l2Normalize, relu, reshape, slice } from '../engine/ops/index.js';
import { Sequential, WeightNormLinear, dinoLinear, type Layer } from './head-layers.js';

/**
 * SimSiam's projector: Linear(in, hidden, no bias), BN, ReLU, Linear(hidden, hidden, no bias), BN, ReLU,
 * Linear(hidden, dim), BN(dim, affine=False). The hidden width is the backbone's feature width (SimSiam
 * keeps prev_dim); the last Linear's bias is frozen, since the affine-free BN after it cancels it.
 */
export class SimSiamProjector extends Sequential {
  constructor(engine: Engine, inDim: number, rng: Rng, opts: { dim?: number; hiddenDim?: number } = {}) {
    const dim = opts.dim ?? 2048;
    const hidden = opts.hiddenDim ?? inDim;
    super([
      new nn.Linear(engine, inDim, hidden, rng, { bias: false }),
      new nn.BatchNorm1d(engine, hidden),
      relu,
      new nn.Linear(engine, hidden, hidden, rng, { bias: false }),
      new nn.BatchNorm1d(engine, hidden),
      relu,
      new nn.Linear(engine, hidden, dim, rng),
      new nn.BatchNorm1d(engine, dim, { affine: false }),
    ]);
    (this.layers[6] as nn.Linear).bias!.requiresGrad = false;
  }
}

/** SimSiam's predictor: Linear(dim, predDim, no bias), BN, ReLU, Linear(predDim, dim) (a bottleneck, 2048 → 512 → 2048). */
export class SimSiamPredictor extends Sequential {
  constructor(engine: Engine, rng: Rng, opts: { dim?: number; predDim?: number } = {}) {
    const dim = opts.dim ?? 2048;
    const pred = opts.predDim ?? 512;
    super([
      new nn.Linear(engine, dim, pred, rng, { bias: false }),
      new nn.BatchNorm1d(engine, pred),
      relu,
      new nn.Linear(engine, pred, dim, rng),
    ]);
  }
}

/** SimCLR's projector: Linear(in, hidden, no bias), BN, ReLU, Linear(hidden, out) (128 outputs in SimCLR). */
export class SimClrProjector extends Sequential {
  constructor(engine: Engine, inDim: number, rng: Rng, opts: { hiddenDim?: number; outDim?: number } = {}) {
    const hidden = opts.hiddenDim ?? inDim;
    super([
      new nn.Linear(engine, inDim, hidden, rng, { bias: false }),
      new nn.BatchNorm1d(engine, hidden),
      relu,
      new nn.Linear(engine, hidden, opts.outDim ?? 128, rng),
    ]);
  }
}

/** Sizes and options of DINO's projection head. */
export interface DinoHeadOptions {
  /** BatchNorm after each hidden Linear (DINO's use_bn_in_head, for ResNets). */
  useBn?: boolean;
  /** Freeze the weight-norm gain g at 1 (DINO's norm_last_layer, default true). */
  normLastLayer?: boolean;
  nlayers?: number;
  hiddenDim?: number;
  bottleneckDim?: number;
  /** Epochs during which cancelLastLayerGrad drops the last layer's gradients (DINO's freeze_last_layer). */
  freezeLastLayer?: number;
}

/**
 * DINO's head: an MLP (in → hidden → hidden → bottleneck, GELU between, `nlayers` Linear layers in
 * all), L2 normalisation, then a weight-normalised Linear(bottleneck, K) without bias.
 */
export class DinoHead extends nn.Module {
  readonly mlp: Layer;
  readonly last_layer: WeightNormLinear;
  readonly freezeLastLayer: number;

  constructor(engine: Engine, inDim: number, outDim: number, rng: Rng, opts: DinoHeadOptions = {}) {
    super();
    const { useBn = false, normLastLayer = true, nlayers = 3, hiddenDim = 2048, bottleneckDim = 256 } = opts;
    if (!(Number.isInteger(nlayers) && nlayers >= 1)) throw new Error(`DinoHead: nlayers must be a positive integer, got ${nlayers}`);
    this.freezeLastLayer = opts.freezeLastLayer ?? 1;
    const body = nlayers === 1 ? dinoLinear(engine, inDim, bottleneckDim, rng) : mlp(engine, inDim, rng, { useBn, nlayers, hiddenDim, bottleneckDim });
    this.mlp = this.registerModule('mlp', body);
    this.last_layer = this.registerModule('last_layer', new WeightNormLinear(engine, bottleneckDim, outDim, rng, { freezeNorm: normLastLayer }));
  }

  /** [.., in] → [.., K]. */
  forward(x: Tensor): Tensor {
    return this.last_layer.forward(this.embed(x));
  }

  /**
   * The L2-normalised bottleneck features [.., bottleneck]. Leading axes are flattened into one batch
   * for the MLP, so a BN in the head normalises over images and tokens alike, as iBOT's
   * CustomSequential does by permuting the features to axis 1.
   */
  protected embed(x: Tensor): Tensor {
    const lead = x.shape.slice(0, -1);
    const rows = this.mlp.forward(x.ndim === 2 ? x : reshape(x, [-1, x.shape[x.ndim - 1]]));
    return l2Normalize(x.ndim === 2 ? rows : reshape(rows, [...lead, rows.shape[1]]), -1);
  }

  /**
   * DINO's cancel_gradients_last_layer: drop the gradients of every `last_layer*` parameter, so the
   * optimizer step leaves them as they are. Called between backward and step; with an epoch, only
   * while epoch < freezeLastLayer (the first epoch by default).
   */
  cancelLastLayerGrad(epoch?: number): void {
    if (epoch !== undefined && epoch >= this.freezeLastLayer) return;
    for (const [name, p] of this.namedParameters()) {
      if (!name.startsWith('last_layer')) continue;
      p.grad?.dispose();
      p.grad = null;
    }
  }
}

type MlpOptions = Required<Pick<DinoHeadOptions, 'useBn' | 'nlayers' | 'hiddenDim' | 'bottleneckDim'>>;

function mlp(engine: Engine, inDim: number, rng: Rng, o: MlpOptions): Sequential {
  const layers: (Layer | ((x: Tensor) => Tensor))[] = [];
  for (let i = 0; i < o.nlayers - 1; i++) {
    layers.push(dinoLinear(engine, i === 0 ? inDim : o.hiddenDim, o.hiddenDim, rng));
    if (o.useBn) layers.push(new nn.BatchNorm1d(engine, o.hiddenDim));
    layers.push(gelu);
  }
  layers.push(dinoLinear(engine, o.hiddenDim, o.bottleneckDim, rng));
  return new Sequential(layers);
}

/** Sizes and options of iBOT's head ([CLS] and patch outputs). */
export interface IbotHeadOptions extends DinoHeadOptions {
  /** One last layer for [CLS] and patches (default), or a separate `last_layer2` to patchOutDim. */
  sharedHead?: boolean;
  patchOutDim?: number;
}

/**
 * iBOT's head: DINO's MLP and normalisation on every token of [B, 1+P, D] (the [CLS] token first), then
 * the last layer on [CLS] → [B, K] and on the patches → [B, P, K] (shared by default; iBOT's student
 * may use a separate last_layer2). A [B, D] input is a plain DINO head forward.
 */
export class IbotHead extends DinoHead {
  readonly last_layer2: WeightNormLinear;

  constructor(engine: Engine, inDim: number, outDim: number, rng: Rng, opts: IbotHeadOptions = {}) {
    super(engine, inDim, outDim, rng, opts);
    if (opts.sharedHead ?? true) {
      // Not registered again: the shared tensors keep their `last_layer.*` names.
      this.last_layer2 = this.last_layer;
    } else {
      const layer = new WeightNormLinear(engine, opts.bottleneckDim ?? 256, opts.patchOutDim ?? outDim, rng, { freezeNorm: opts.normLastLayer ?? true });
      this.last_layer2 = this.registerModule('last_layer2', layer);
    }
  }

  /** Tokens [B, 1+P, D] → head outputs of the [CLS] token [B, K] and of every patch [B, P, K']. */
  forwardTokens(tokens: Tensor): { cls: Tensor; patch: Tensor } {
    if (tokens.ndim !== 3 || tokens.shape[1] < 2) throw new Error(`IbotHead: expects tokens [B, 1+P, D], got ${tokens}`);
    const [b, n] = tokens.shape;
    const h = this.embed(tokens);
    const cls = reshape(slice(h, 1, 0, 1), [b, h.shape[2]]);
    return { cls: this.last_layer.forward(cls), patch: this.last_layer2.forward(slice(h, 1, 1, n)) };
  }
}
