// Between a Module's state dict (GPU tensors) and safetensors. Names stay PyTorch's dotted paths, so a
// file written here loads with safetensors.torch.load_file + model.load_state_dict, and back.

import type { Engine, Tensor } from '../engine.js';
import type { LoadResult, Module } from '../nn/module.js';
import { BatchNorm } from '../nn/batch-norm.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from './safetensors.js';

/** Copy GPU tensors to the CPU (waits for queued kernels), f32 as F32 and i32 as I32. */
export async function downloadTensors(dict: Record<string, Tensor>): Promise<Record<string, SafeTensor>> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(dict)) {
    out[name] = { dtype: t.dtype === 'i32' ? 'I32' : 'F32', shape: [...t.shape], data: await t.toArray() };
  }
  return out;
}

/** Upload tensors to `engine` (in the caller's scope: dispose them, or run this inside engine.scope). */
export function uploadTensors(engine: Engine, tensors: Iterable<[string, SafeTensor]>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of tensors) out[name] = engine.tensor(t.data, t.shape, { dtype: t.dtype === 'I32' ? 'i32' : 'f32' });
  return out;
}

/** A module's parameters and buffers as a safetensors file. */
export async function moduleToSafetensors(module: Module, metadata?: Record<string, string>): Promise<Uint8Array> {
  return writeSafetensors(await downloadTensors(module.stateDict()), metadata);
}

/**
 * Load a safetensors file into a module through its loadStateDict, which checks every name and shape
 * before it copies anything: a mismatch leaves the module untouched. `source` names the file in errors.
 */
export function loadSafetensorsInto(module: Module, bytes: Uint8Array, opts: { strict?: boolean; source?: string } = {}): LoadResult {
  const source = opts.source ?? 'safetensors';
  const { tensors } = readSafetensors(bytes, { source });
  return loadTensorsInto(module, tensors, { strict: opts.strict, source });
}

/**
 * The batch-norm step counters a state dict may leave out, as zeros. PyTorch's strict load accepts a
 * dict without `num_batches_tracked` when it carries no version metadata (every dict read from
 * safetensors): BatchNorm's _load_from_state_dict fills the absent counter with 0 (PyTorch 1.x; 2.x
 * keeps the module's own, which is 0 on a freshly built model). Nothing else is filled in, so any
 * other missing name is still an error.
 */
export function absentBatchNormCounters(module: Module, names: ReadonlySet<string>): [string, SafeTensor][] {
  const out: [string, SafeTensor][] = [];
  for (const [path, m] of module.namedModules()) {
    if (!(m instanceof BatchNorm)) continue;
    const name = path ? `${path}.num_batches_tracked` : 'num_batches_tracked';
    if (!names.has(name)) out.push([name, { dtype: 'I32', shape: [], data: new Int32Array(1) }]);
  }
  return out;
}

/**
 * loadStateDict from CPU tensors: uploaded in a scope, so they are released whatever happens. Absent
 * batch-norm counters load as 0, as in PyTorch (see absentBatchNormCounters).
 */
export function loadTensorsInto(
  module: Module,
  tensors: Iterable<[string, SafeTensor]>,
  opts: { strict?: boolean; source?: string } = {},
): LoadResult {
  const engine = moduleEngine(module);
  const given = [...tensors];
  const all = [...given, ...absentBatchNormCounters(module, new Set(given.map(([n]) => n)))];
  try {
    return engine.scope(() => module.loadStateDict(uploadTensors(engine, all), { strict: opts.strict }));
  } catch (e) {
    throw opts.source ? new Error(`${opts.source}: ${(e as Error).message}`, { cause: e }) : e;
  }
}

/** The engine that holds a module's tensors (throws for a module without any). */
export function moduleEngine(module: Module): Engine {
  const first = Object.values(module.stateDict())[0];
  if (!first) throw new Error(`${module.constructor.name} has no parameters or buffers to load into`);
  return first.engine;
}
