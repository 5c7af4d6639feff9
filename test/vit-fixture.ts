// The ViT fixtures of scripts/fixtures/vit_fixture.py: their layout, and the formula weights loaded by
// DINO's names. Shared by test/vit.test.ts and the self-check (test/selfcheck/).

import type { Engine, Tensor } from '../engine/index.js';
import type { VisionTransformer } from '../models/index.js';
import { hashUniform } from './fixture-formulas.js';

export interface VitReduced {
  shape: number[];
  values?: number[];
  rows?: number[];
  rowValues?: number[];
  rowSums?: number[];
  colSums?: number[];
}

export interface VitCase {
  size: number;
  mask: number[] | null;
  cls: number[];
  tokens: number[];
  tokenShape: number[];
  grads: Record<string, VitReduced>;
}

export interface VitFixture {
  imgSize: number;
  patchSize: 16;
  batch: number;
  state: [string, number[]][];
  cases: VitCase[];
}

export const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The generator's param_value for the k-th state-dict entry. */
export function vitFormulaValue(name: string, shape: number[], k: number): Float32Array {
  const u = hashUniform(k, numel(shape));
  const parts = name.split('.');
  const f = parts.length >= 2 && parts[parts.length - 2].startsWith('norm') && parts[parts.length - 1] === 'weight'
    ? (v: number) => 1 + 0.1 * v
    : name.endsWith('bias')
      ? (v: number) => 0.05 * v
      : ['cls_token', 'pos_embed', 'masked_embed'].includes(name)
        ? (v: number) => 0.5 * v
        : (v: number) => Math.sqrt(3 / numel(shape.slice(1))) * v;
  return Float32Array.from(u, f);
}

export function loadVitFormula(e: Engine, model: VisionTransformer, state: [string, number[]][]): void {
  e.scope(() => {
    const dict: Record<string, Tensor> = {};
    state.forEach(([name, shape], k) => (dict[name] = e.tensor(vitFormulaValue(name, shape, k), shape)));
    model.loadStateDict(dict);
  });
}
