// Training checkpoints: ONE safetensors file. Model tensors keep their PyTorch names
// (`layer1.0.conv1.weight`), so in PyTorch
//   sd = safetensors.torch.load_file(path)
//   model.load_state_dict({k: v for k, v in sd.items() if not k.startswith('optimizer.')})
// restores the weights. Optimizer buffers are `optimizer.<param index>.<buffer name>`; everything else
// is string metadata: arch, method, epoch, step, config (JSON), the optimizer's hyperparameters and step
// counts (JSON), format_version, and checksum, the SHA-256 of the data section (which the header
// cannot hash itself). Writes are atomic (temporary file, fsync, rename), and a load checks the whole
// file before it modifies any tensor.

import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { io, type nn } from '../engine/index.js';
import { loadCheckpointBytes, OPTIMIZER_PREFIX, sha256Hex, type LoadCheckpointOptions, type LoadCheckpointResult } from './checkpoint-bytes.js';
import { decodeMeta, encodeMeta, type CheckpointMeta } from './checkpoint-meta.js';
import { optimizerTensors, type AnyOptimizer } from './checkpoint-optim.js';

export { type CheckpointMeta } from './checkpoint-meta.js';
export { verifyChecksum, type LoadCheckpointOptions, type LoadCheckpointResult } from './checkpoint-bytes.js';

/** What a checkpoint saves: model, optimizer, metadata. */
export interface SaveCheckpointOptions {
  model: nn.Module;
  optimizer?: AnyOptimizer;
  meta: CheckpointMeta;
}

/** Write model, optimizer state and metadata to one safetensors file, atomically, with a checksum. */
export async function saveCheckpoint(path: string, opts: SaveCheckpointOptions): Promise<void> {
  const modelDict = opts.model.stateDict();
  const clash = Object.keys(modelDict).find((n) => n.startsWith(OPTIMIZER_PREFIX));
  if (clash) throw new Error(`saveCheckpoint: model tensor '${clash}' collides with the '${OPTIMIZER_PREFIX}' prefix of optimizer state`);
  const opt = opts.optimizer ? optimizerTensors(opts.optimizer, OPTIMIZER_PREFIX) : null;
  const metadata = encodeMeta(opts.meta, opt?.json);
  const tensors = await io.downloadTensors({ ...modelDict, ...opt?.tensors });
  const enc = io.encodeSafetensors(tensors);
  metadata.checksum = await sha256Hex(enc.data);
  await writeAtomic(path, [enc.header(metadata), enc.data]);
}

/** Verify and load the checkpoint file at `path` (see loadCheckpointBytes). */
export async function loadCheckpoint(path: string, opts: LoadCheckpointOptions): Promise<LoadCheckpointResult> {
  return loadCheckpointBytes(await readFile(path), path, opts);
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
