// ResNet-18/34/50 (He et al. 2016) with torchvision's layout, parameter names and initialisation, so
// that state dicts move between this project and torchvision.models.resnet* one to one. Options add
// the small-image stem of the SimSiam CIFAR code (3×3 stride-1 conv1, no max-pool), narrower widths
// and a backbone-only form (no fc) whose forward returns the pooled features.

import type { Engine, Rng, Tensor } from '../engine/index.js';
import { nn } from '../engine/index.js';
import { copyInto, globalAvgPool, maxPool2d } from '../engine/ops/index.js';

/** Where forwardFeatures may stop: after the stem (conv1, bn1, relu, max-pool) or after a stage. */
export type ResNetStage = 'stem' | 'layer1' | 'layer2' | 'layer3' | 'layer4';
/** A ResNet's stages in order. */
export const RESNET_STAGES: readonly ResNetStage[] = ['stem', 'layer1', 'layer2', 'layer3', 'layer4'];

/** Input channels, classes, stem and widths of a ResNet. */
export interface ResNetOptions {
  /** Image channels (1 for Fashion-MNIST). */
  inChannels?: number;
  /** 0: no fc, forward returns the pooled features [B, featureDim]; > 0: an fc to this many logits. */
  numClasses?: number;
  /** 3×3 stride-1 conv1 and no max-pool, for 28-32 px inputs. */
  smallImage?: boolean;
  /** Zero the last BN's weight in every residual block, so each block starts as the identity. */
  zeroInitResidual?: boolean;
  /** Planes of the four stages (torchvision: 64, 128, 256, 512); the stem has widths[0] channels. */
  widths?: readonly number[];
}

/** torchvision's convolutions: no bias (a BN follows), padding k//2, kaiming_normal_ fan_out init. */
function conv(engine: Engine, inC: number, outC: number, k: number, stride: number, rng: Rng): nn.Conv2d {
  return new nn.Conv2d(engine, inC, outC, k, { stride, padding: (k - 1) / 2, bias: false, init: 'kaimingNormalFanOut' }, rng);
}

function downsample(engine: Engine, inC: number, outC: number, stride: number, rng: Rng): nn.Sequential | null {
  if (stride === 1 && inC === outC) return null;
  return new nn.Sequential([conv(engine, inC, outC, 1, stride, rng), new nn.BatchNorm2d(engine, outC)]);
}

/** bn followed by its ReLU, in the batch norm's kernels. */
function bnRelu(bn: nn.BatchNorm2d): nn.Step {
  return (t) => bn.forward(t, { relu: true });
}

/**
 * The block's end relu(bn(out) + identity), one fused op; frees the operands when nothing on the
 * tape holds them.
 */
function residual(bn: nn.BatchNorm2d, out: Tensor, x: Tensor, down: nn.Sequential | null): Tensor {
  const identity = down ? down.forward(x) : x;
  const y = bn.forward(out, { residual: identity, relu: true });
  if (!y.requiresGrad) {
    for (const t of [out, identity]) if (t !== x) t.dispose();
  }
  return y;
}

interface Block extends nn.Layer {
  /** The BN that zeroInitResidual zeroes. */
  readonly lastBn: nn.BatchNorm2d;
}

/** Two 3×3 convs (ResNet-18/34); the stride sits on the first. */
class BasicBlock extends nn.Module implements Block {
  static readonly expansion = 1;
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.BatchNorm2d;
  readonly downsample: nn.Sequential | null;

  constructor(engine: Engine, inplanes: number, planes: number, stride: number, rng: Rng) {
    super();
    this.conv1 = this.registerModule('conv1', conv(engine, inplanes, planes, 3, stride, rng));
    this.bn1 = this.registerModule('bn1', new nn.BatchNorm2d(engine, planes));
    this.conv2 = this.registerModule('conv2', conv(engine, planes, planes, 3, 1, rng));
    this.bn2 = this.registerModule('bn2', new nn.BatchNorm2d(engine, planes));
    const down = downsample(engine, inplanes, planes, stride, rng);
    this.downsample = down && this.registerModule('downsample', down);
  }

  get lastBn(): nn.BatchNorm2d {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    const steps: nn.Step[] = [(t) => this.conv1.forward(t), bnRelu(this.bn1), (t) => this.conv2.forward(t)];
    return residual(this.bn2, nn.chain(x, steps), x, this.downsample);
  }
}

/** 1×1 reduce, 3×3 (with the stride, torchvision's "ResNet v1.5"), 1×1 expand ×4 (ResNet-50). */
class Bottleneck extends nn.Module implements Block {
  static readonly expansion = 4;
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.BatchNorm2d;
  readonly conv3: nn.Conv2d;
  readonly bn3: nn.BatchNorm2d;
  readonly downsample: nn.Sequential | null;

  constructor(engine: Engine, inplanes: number, planes: number, stride: number, rng: Rng) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', conv(engine, inplanes, planes, 1, 1, rng));
    this.bn1 = this.registerModule('bn1', new nn.BatchNorm2d(engine, planes));
    this.conv2 = this.registerModule('conv2', conv(engine, planes, planes, 3, stride, rng));
    this.bn2 = this.registerModule('bn2', new nn.BatchNorm2d(engine, planes));
    this.conv3 = this.registerModule('conv3', conv(engine, planes, out, 1, 1, rng));
    this.bn3 = this.registerModule('bn3', new nn.BatchNorm2d(engine, out));
    const down = downsample(engine, inplanes, out, stride, rng);
    this.downsample = down && this.registerModule('downsample', down);
  }

  get lastBn(): nn.BatchNorm2d {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    const steps: nn.Step[] = [(t) => this.conv1.forward(t), bnRelu(this.bn1)];
    steps.push((t) => this.conv2.forward(t), bnRelu(this.bn2), (t) => this.conv3.forward(t));
    return residual(this.bn3, nn.chain(x, steps), x, this.downsample);
  }
}

type BlockClass = (typeof BasicBlock | typeof Bottleneck) & { expansion: number };

function checkOptions(name: string, o: ResNetOptions): Required<ResNetOptions> {
  const r = {
    inChannels: o.inChannels ?? 3,
    numClasses: o.numClasses ?? 0,
    smallImage: o.smallImage ?? false,
    zeroInitResidual: o.zeroInitResidual ?? false,
    widths: o.widths ?? [64, 128, 256, 512],
  };
  const positive = (v: number) => Number.isInteger(v) && v >= 1;
  if (!positive(r.inChannels)) throw new Error(`${name}: inChannels must be a positive integer, got ${r.inChannels}`);
  if (!(positive(r.numClasses) || r.numClasses === 0)) {
    throw new Error(`${name}: numClasses must be 0 (no fc) or a positive integer, got ${r.numClasses}`);
  }
  if (r.widths.length !== 4 || !r.widths.every(positive)) {
    throw new Error(`${name}: widths must be four positive integers, got [${r.widths.join(', ')}]`);
  }
  return r;
}

/** torchvision's ResNet with its parameter names (conv1, bn1, layer1.0.conv1, ...). */
export class ResNet extends nn.Module {
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly layers: nn.Sequential[];
  readonly fc: nn.Linear | null;
  /** Channels of the pooled features (widths[3] × the block's expansion: 512 for ResNet-18, 2048 for ResNet-50). */
  readonly featureDim: number;
  readonly options: Readonly<Required<ResNetOptions>>;

  constructor(engine: Engine, readonly arch: string, block: BlockClass, depths: readonly number[], opts: ResNetOptions, rng: Rng) {
    super();
    const o = (this.options = checkOptions(arch, opts));
    const stem = o.smallImage ? { k: 3, stride: 1 } : { k: 7, stride: 2 };
    this.conv1 = this.registerModule('conv1', conv(engine, o.inChannels, o.widths[0], stem.k, stem.stride, rng));
    this.bn1 = this.registerModule('bn1', new nn.BatchNorm2d(engine, o.widths[0]));
    let inplanes = o.widths[0];
    this.layers = depths.map((depth, s) => {
      const blocks: Block[] = [];
      for (let b = 0; b < depth; b++) {
        const stride = s > 0 && b === 0 ? 2 : 1;
        blocks.push(new block(engine, inplanes, o.widths[s], stride, rng));
        inplanes = o.widths[s] * block.expansion;
      }
      if (o.zeroInitResidual) engine.scope(() => blocks.forEach((bl) => copyInto(bl.lastBn.weight!, engine.zeros([bl.lastBn.numFeatures]))));
      return this.registerModule(`layer${s + 1}`, new nn.Sequential(blocks));
    });
    this.featureDim = inplanes;
    // torchvision leaves the fc at nn.Linear's default init.
    this.fc = o.numClasses > 0 ? this.registerModule('fc', new nn.Linear(engine, inplanes, o.numClasses, rng)) : null;
  }

  /** Pooled features [B, featureDim], or logits [B, numClasses] when the model has an fc. */
  forward(x: Tensor): Tensor {
    const steps: nn.Step[] = [(t) => this.forwardFeatures(t), globalAvgPool];
    if (this.fc) steps.push((t) => this.fc!.forward(t));
    return nn.chain(x, steps);
  }

  /**
   * The activation [B, C, H, W] after the stem or a stage (default layer4). Later stages are not
   * computed: the early exit of HVP's intermediate-layer selection.
   */
  forwardFeatures(x: Tensor, opts: { upTo?: ResNetStage } = {}): Tensor {
    const upTo = opts.upTo ?? 'layer4';
    const last = RESNET_STAGES.indexOf(upTo);
    if (last < 0) throw new Error(`${this.arch}.forwardFeatures: upTo must be one of ${RESNET_STAGES.join(', ')}, got '${upTo}'`);
    if (x.ndim !== 4 || x.shape[1] !== this.options.inChannels) {
      throw new Error(`${this.arch}: expects input [B, ${this.options.inChannels}, H, W], got ${x}`);
    }
    const stages: nn.Step[] = [(t) => this.stem(t), ...this.layers.map((l) => (t: Tensor) => l.forward(t))];
    return nn.chain(x, stages.slice(0, last + 1));
  }

  private stem(x: Tensor): Tensor {
    const steps: nn.Step[] = [(t) => this.conv1.forward(t), bnRelu(this.bn1)];
    if (!this.options.smallImage) steps.push((t) => maxPool2d(t, { kernel: 3, stride: 2, padding: 1 }));
    return nn.chain(x, steps);
  }
}

/** ResNet-18 (basic blocks, 2-2-2-2). */
export function resnet18(engine: Engine, opts: ResNetOptions, rng: Rng): ResNet {
  return new ResNet(engine, 'resnet18', BasicBlock, [2, 2, 2, 2], opts, rng);
}

/** ResNet-34 (basic blocks, 3-4-6-3). */
export function resnet34(engine: Engine, opts: ResNetOptions, rng: Rng): ResNet {
  return new ResNet(engine, 'resnet34', BasicBlock, [3, 4, 6, 3], opts, rng);
}

/** ResNet-50 (bottleneck blocks, 3-4-6-3). */
export function resnet50(engine: Engine, opts: ResNetOptions, rng: Rng): ResNet {
  return new ResNet(engine, 'resnet50', Bottleneck, [3, 4, 6, 3], opts, rng);
}
