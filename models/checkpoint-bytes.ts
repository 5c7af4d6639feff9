// Reading a checkpoint that is already in memory: the part of loading that needs no file system, so a
// browser (a file picked in a page, or fetched from `hvp serve`) loads checkpoints through the same
// checks as `--resume`. SHA-256 comes from WebCrypto, which Node and browsers both provide.

import { io, type nn } from '../engine/index.js';
import { decodeMeta, type CheckpointMeta } from './checkpoint-meta.js';
import { prepareOptimizerState, type AnyOptimizer } from './checkpoint-optim.js';

/** What a checkpoint loads into: model, optimizer, strictness. */
export interface LoadCheckpointOptions {
  model: nn.Module;
  optimizer?: AnyOptimizer;
  /** Missing or unexpected model tensors throw when strict (the default); shape mismatches always throw. */
  strict?: boolean;
}

/** Names a checkpoint load did not match, and the checkpoint's metadata. */
export interface LoadCheckpointResult extends nn.LoadResult {
  meta: CheckpointMeta;
}

export const OPTIMIZER_PREFIX = 'optimizer.';

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  // Browsers offer WebCrypto only to secure contexts (https, or http on localhost).
  if (!subtle) throw new Error('SHA-256 of a checkpoint needs WebCrypto (crypto.subtle), which this context lacks: open the page on localhost or https');
  const digest = await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Throw when the data section does not hash to the checksum the header records. Files without one
 * (a state dict exported from PyTorch) pass unless `required`.
 */
export async function verifyChecksum(bytes: Uint8Array, header: io.SafetensorsHeader, source: string, required = true): Promise<void> {
  const expected = header.metadata.checksum;
  if (expected === undefined && !required) return;
  const actual = await sha256Hex(bytes.subarray(header.dataOffset));
  if (actual !== expected) {
    throw new Error(`${source}: checksum mismatch: the data section hashes to ${actual} but the header records ${expected} (the file is corrupt)`);
  }
}

/** The metadata of a checkpoint held in memory, from its header alone (loading verifies the checksum). */
export function checkpointMeta(bytes: Uint8Array, source: string): CheckpointMeta {
  return decodeMeta(io.readSafetensorsHeader(bytes, bytes.length, source).metadata, source);
}

/**
 * Verify and load checkpoint bytes into `model` (and `optimizer`). Every check (layout, checksum, names,
 * shapes, optimizer structure) runs before the first copy, so a failure leaves both untouched.
 */
export async function loadCheckpointBytes(bytes: Uint8Array, source: string, opts: LoadCheckpointOptions): Promise<LoadCheckpointResult> {
  const header = io.readSafetensorsHeader(bytes, bytes.length, source);
  const meta = decodeMeta(header.metadata, source);
  await verifyChecksum(bytes, header, source);
  const { tensors } = io.readSafetensors(bytes, { source });
  const modelTensors = [...tensors].filter(([n]) => !n.startsWith(OPTIMIZER_PREFIX));
  const restoreOptimizer = opts.optimizer
    ? prepareOptimizerState(opts.optimizer, header.metadata.optimizer, tensors, OPTIMIZER_PREFIX, source)
    : null;
  const engine = io.moduleEngine(opts.model);
  return engine.scope(() => {
    const result = io.loadTensorsInto(opts.model, modelTensors, { strict: opts.strict, source });
    restoreOptimizer?.(engine);
    return { ...result, meta };
  });
}
