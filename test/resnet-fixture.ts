// The ResNet fixtures of scripts/fixtures/resnet_fixture.py: their layout, and the formula weights
// loaded by torchvision's names. Shared by test/resnet.test.ts and the self-check (test/selfcheck/).

import type { Engine, nn, Tensor } from '../engine/index.js';
import { hashUniform } from './fixture-formulas.js';

export interface ResNetReduced {
  shape: number[];
  values?: number[];
  slices?: [number, number[]][];
  sumsq?: number;
}

export interface ResNetFixture {
  smallImage: boolean;
  numClasses: number;
  inputShape: number[];
  state: [string, number[]][];
  evalOut: number[];
  trainOut: number[];
  running: Record<string, { mean: number[]; var: number[] }>;
  grads: Record<string, ResNetReduced>;
  inputGrad: ResNetReduced;
}

/** The generator's formula_value for the k-th state-dict entry. */
export function resnetFormulaValue(name: string, shape: number[], k: number): Float32Array {
  const s = hashUniform(k, shape.reduce((a, b) => a * b, 1));
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const f = name.endsWith('running_var')
    ? (v: number) => 1 + 0.25 * v
    : name.endsWith('running_mean') || name.endsWith('bias')
      ? (v: number) => 0.1 * v
      : shape.length === 1
        ? (v: number) => 1 + 0.1 * v
        : (v: number) => Math.sqrt(6 / fanIn) * v;
  return Float32Array.from(s, f);
}

/** Every entry of the fixture's state dict, from the formula, loaded strictly by name. */
export function loadResNetFormula(e: Engine, model: nn.Module, fx: ResNetFixture): void {
  e.scope(() => {
    const dict: Record<string, Tensor> = {};
    fx.state.forEach(([name, shape], k) => {
      dict[name] = name.endsWith('num_batches_tracked')
        ? e.tensor([0], shape, { dtype: 'i32' })
        : e.tensor(resnetFormulaValue(name, shape, k), shape);
    });
    model.loadStateDict(dict);
  });
}
