// Training checkpoints: ONE safetensors file. Model tensors keep their PyTorch names
// (`layer1.0.conv1.weight`), so in PyTorch
//   sd = safetensors.torch.load_file(path)
//   model.load_state_dict({k: v for k, v in sd.items() if not k.startswith('optimizer.')})
// restores the weights. Optimizer buffers are `optimizer.<param index>.<buffer name>`; everything else
// is string metadata: arch, method, epoch, step, config (JSON), the optimizer's hyperparameters and step
// counts (JSON), format_version, and checksum, the SHA-256 of the data section (which the header
// cannot hash itself). Writes are atomic (temporary file, fsync, rename), and a load checks the whole
// file before it modifies any tensor.

import { createHash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { io, type nn } from '../engine/index.js';
import { decodeMeta, encodeMeta, type CheckpointMeta } from './checkpoint-meta.js';
import { optimizerTensors, prepareOptimizerState, type AnyOptimizer } from './checkpoint-optim.js';

export { type CheckpointMeta } from './checkpoint-meta.js';

export interface SaveCheckpointOptions {
  model: nn.Module;
  optimizer?: AnyOptimizer;
  meta: CheckpointMeta;
}

export interface LoadCheckpointOptions {
  model: nn.Module;
  optimizer?: AnyOptimizer;
  /** Missing or unexpected model tensors throw when strict (the default); shape mismatches always throw. */
  strict?: boolean;
}

export interface LoadCheckpointResult extends nn.LoadResult {
  meta: CheckpointMeta;
}

const OPTIMIZER_PREFIX = 'optimizer.';

export async function saveCheckpoint(path: string, opts: SaveCheckpointOptions): Promise<void> {
  const modelDict = opts.model.stateDict();
  const clash = Object.keys(modelDict).find((n) => n.startsWith(OPTIMIZER_PREFIX));
  if (clash) throw new Error(`saveCheckpoint: model tensor '${clash}' collides with the '${OPTIMIZER_PREFIX}' prefix of optimizer state`);
  const opt = opts.optimizer ? optimizerTensors(opts.optimizer, OPTIMIZER_PREFIX) : null;
  const metadata = encodeMeta(opts.meta, opt?.json);
  const tensors = await io.downloadTensors({ ...modelDict, ...opt?.tensors });
  const enc = io.encodeSafetensors(tensors);
  metadata.checksum = sha256(enc.data);
  await writeAtomic(path, [enc.header(metadata), enc.data]);
}

/**
 * Verify and load a checkpoint into `model` (and `optimizer`). Every check (layout, checksum, names,
 * shapes, optimizer structure) runs before the first copy, so a failure leaves both untouched.
 */
export async function loadCheckpoint(path: string, opts: LoadCheckpointOptions): Promise<LoadCheckpointResult> {
  const bytes = await readFile(path);
  const header = io.readSafetensorsHeader(bytes, bytes.length, path);
  const meta = decodeMeta(header.metadata, path);
  verifyChecksum(bytes, header, path);
  const { tensors } = io.readSafetensors(bytes, { source: path });
  const modelTensors = [...tensors].filter(([n]) => !n.startsWith(OPTIMIZER_PREFIX));
  const restoreOptimizer = opts.optimizer
    ? prepareOptimizerState(opts.optimizer, header.metadata.optimizer, tensors, OPTIMIZER_PREFIX, path)
    : null;
  const engine = io.moduleEngine(opts.model);
  return engine.scope(() => {
    const result = io.loadTensorsInto(opts.model, modelTensors, { strict: opts.strict, source: path });
    restoreOptimizer?.(engine);
    return { ...result, meta };
  });
}

/**
 * Throw when the data section does not hash to the checksum the header records. Files without one
 * (a state dict exported from PyTorch) pass unless `required`.
 */
export function verifyChecksum(bytes: Uint8Array, header: io.SafetensorsHeader, source: string, required = true): void {
  const expected = header.metadata.checksum;
  if (expected === undefined && !required) return;
  const actual = sha256(bytes.subarray(header.dataOffset));
  if (actual !== expected) {
    throw new Error(`${source}: checksum mismatch: the data section hashes to ${actual} but the header records ${expected} (the file is corrupt)`);
  }
}

/** The metadata of a checkpoint, reading only its header (the checksum is not verified). */
export async function readCheckpointMeta(path: string): Promise<CheckpointMeta> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const prefix = Buffer.alloc(Math.min(size, 8));
    await file.read(prefix, 0, prefix.length, 0);
    // Only as much as the header claims, and never more than the file holds (the parser reports that).
    const headerLength = prefix.length === 8 ? Number(prefix.readBigUInt64LE(0)) : 0;
    const head = Buffer.alloc(Math.min(size, 8 + headerLength));
    await file.read(head, 0, head.length, 0);
    return decodeMeta(io.readSafetensorsHeader(head, size, path).metadata, path);
  } finally {
    await file.close();
  }
}

/** Make the rename itself durable. Windows cannot open a directory for fsync; its rename is already journaled. */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Write `path.tmp-<pid>`, fsync, then rename over `path`: a crash leaves either the old file or the new
 * one, never a torn file (a leftover temporary is ignored by every reader and overwritten by the next save).
 */
async function writeAtomic(path: string, chunks: Uint8Array[]): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const file = await open(tmp, 'w');
    try {
      for (const c of chunks) for (let done = 0; done < c.length; ) done += (await file.write(c, done)).bytesWritten;
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    await syncDir(dirname(path));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
