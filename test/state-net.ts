// A small module tree with torchvision-style names (layer1.0.conv1.weight), an i32 scalar buffer like
// BatchNorm's num_batches_tracked, and values chosen per seed, for the safetensors and checkpoint tests.

import { nn, Rng, type Engine, type Tensor } from '../engine/index.js';

class Block extends nn.Module {
  constructor(e: Engine, rng: Rng, width: number) {
    super();
    this.registerModule('conv1', new nn.Linear(e, width, width, rng));
    this.registerBuffer('running_mean', e.rand([width], rng, -1, 1));
    this.registerBuffer('num_batches_tracked', e.tensor([Math.floor(rng.uniform() * 1000)], [], { dtype: 'i32' }));
  }
}

export interface NetOptions {
  /** Output features of fc (changing it mis-shapes fc.weight and fc.bias). */
  fcOut?: number;
  /** Add a parameter `extra.weight` that files of the default net lack. */
  extra?: boolean;
  /** Leave out layer1.1 (whose tensors then are unexpected in files of the default net). */
  oneBlock?: boolean;
}

export class Net extends nn.Module {
  readonly fc: nn.Linear;
  constructor(e: Engine, seed: number, opts: NetOptions = {}) {
    super();
    const rng = new Rng(seed);
    const layer1 = new nn.Module();
    layer1.registerModule('0', new Block(e, rng, 4));
    if (!opts.oneBlock) layer1.registerModule('1', new Block(e, rng, 4));
    this.registerModule('layer1', layer1);
    this.fc = this.registerModule('fc', new nn.Linear(e, 4, opts.fcOut ?? 3, rng));
    if (opts.extra) this.registerModule('extra', new nn.Linear(e, 2, 2, rng, { bias: false }));
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(x);
  }

}

/** The raw bits of every tensor of a state dict, by name (bit-exact comparisons, NaN payloads included). */
export async function stateBits(dict: Record<string, Tensor>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [n, t] of Object.entries(dict)) out[n] = bits(await t.toArray());
  return out;
}

export function bits(a: Float32Array | Int32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}
