// Shared by the training-loop tests: a tiny synthetic dataset that records which images were read,
// tiny configurations, fresh run directories, and a run's full state (every weight, buffer and
// optimizer tensor, the optimizer's hyper-parameters, the log) for exact comparisons.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, Rng, type Engine } from '../engine/index.js';
import type { Dataset, Image } from '../hvp/data/types.js';
import { DEFAULTS, validateConfig, type TrainConfig } from '../hvp/train/config.js';
import { CHECKPOINT } from '../hvp/train/loop.js';
import { engine as testEngine } from './helpers.js';

export type RecordingDataset = Dataset & { reads: number[] };

/** `n` random side×side images of 3 classes (class sets the mean brightness); `reads` lists every index read. */
export function syntheticDataset(channels: number, n = 48, side = 12): RecordingDataset {
  const rng = new Rng(5);
  const images: Image[] = Array.from({ length: n }, (_, i) => {
    const label = i % 3;
    const pixels = Uint8Array.from({ length: channels * side * side }, () => Math.min(255, Math.floor(60 * label + 120 * rng.uniform())));
    return { pixels, height: side, width: side, label };
  });
  const reads: number[] = [];
  return {
    name: 'synthetic/train',
    length: n,
    channels,
    classes: ['a', 'b', 'c'],
    mean: new Array<number>(channels).fill(0.45),
    std: new Array<number>(channels).fill(0.25),
    size: [side, side],
    reads,
    read: async (i) => {
      reads.push(i);
      return images[i];
    },
  };
}

export function runDir(): string {
  return mkdtempSync(join(tmpdir(), 'hvp-run-'));
}

/** A ResNet with 4-8 channels, 12 px views, batch 8, every step logged; `over` wins. */
export function tiny(over: Partial<TrainConfig>): TrainConfig {
  return validateConfig({
    ...DEFAULTS,
    arch: 'resnet18',
    widths: [4, 4, 8, 8],
    smallImage: true,
    size: 12,
    batchSize: 8,
    epochs: 2,
    dim: 16,
    predDim: 8,
    outDim: 32,
    lr: 0.05,
    logEvery: 1,
    out: runDir(),
    ...over,
  });
}

let shared: Engine | undefined;
export async function sharedEngine(): Promise<Engine> {
  shared ??= await testEngine();
  return shared;
}

export interface RunState {
  /** Every tensor of the checkpoint (model and optimizer), as raw bytes. */
  tensors: Map<string, Buffer>;
  /** The optimizer's stored hyper-parameters and step counts (JSON). */
  optimizer: string;
  step: number;
  /** Log records without the throughput and phase times, which depend on timing. */
  log: Record<string, unknown>[];
}

export function readRunState(out: string): RunState {
  const { tensors, metadata } = io.readSafetensors(readFileSync(join(out, CHECKPOINT)));
  const bytes = new Map([...tensors].map(([n, t]) => [n, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
  const log = readFileSync(join(out, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const { images_per_s: _ips, times_ms: _times, ms: _ms, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
  return { tensors: bytes, optimizer: metadata.optimizer, step: Number(metadata.step), log };
}

/** Names of tensors whose bytes differ (or that only one state holds). */
export function differingTensors(a: RunState, b: RunState): string[] {
  const names = new Set([...a.tensors.keys(), ...b.tensors.keys()]);
  return [...names].filter((n) => !a.tensors.get(n) || !b.tensors.get(n) || !a.tensors.get(n)!.equals(b.tensors.get(n)!));
}
