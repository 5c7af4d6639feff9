// Optimizer state in a checkpoint: each parameter's buffers as tensors `<prefix><param index>.<buffer>`
// and everything else optimizer.stateDict() returns (group hyperparameters and sizes, step counts, any
// field added later) as one JSON string, so it round-trips whatever it holds.

import type { Engine } from '../engine/index.js';
import { io, type optim, type Tensor } from '../engine/index.js';
import { parseJson, toJson } from './checkpoint-meta.js';

export type AnyOptimizer = optim.Optimizer<optim.GroupHyper>;

interface SavedState {
  name: string;
  groups: (optim.GroupHyper & { size: number })[];
  state: ({ step: number; bufferNames: string[] } & Record<string, unknown>)[];
  [extra: string]: unknown;
}

export function optimizerTensors(opt: AnyOptimizer, prefix: string): { tensors: Record<string, Tensor>; json: string } {
  const dict = opt.stateDict();
  const tensors: Record<string, Tensor> = {};
  const state = dict.state.map(({ buffers, ...rest }, i) => {
    for (const [b, t] of Object.entries(buffers)) tensors[`${prefix}${i}.${b}`] = t;
    return { ...rest, bufferNames: Object.keys(buffers) };
  });
  const saved: SavedState = { ...dict, name: opt.name, state };
  return { tensors, json: toJson(saved, 'optimizer state') };
}

/**
 * Check the saved state against `opt` (structure, buffer names, shapes) without touching it, and return
 * the function that loads it. Checking first lets a checkpoint load validate everything before the model
 * or the optimizer is modified.
 */
export function prepareOptimizerState(
  opt: AnyOptimizer,
  json: string | undefined,
  tensors: Map<string, io.LoadedTensor>,
  prefix: string,
  source: string,
): (engine: Engine) => void {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (json === undefined) fail(`holds no optimizer state (it was saved without an optimizer) but ${opt.name} state was requested`);
  const saved = parseJson(json!, 'optimizer', fail) as SavedState;
  if (saved?.name !== opt.name) fail(`optimizer state is for ${saved?.name}, not ${opt.name}`);
  const mine = opt.stateDict();
  const sizes = (g: { size: number }[]) => g.map((x) => x.size).join(', ');
  if (!Array.isArray(saved.groups) || sizes(saved.groups) !== sizes(mine.groups)) {
    fail(`optimizer groups of sizes [${Array.isArray(saved.groups) ? sizes(saved.groups) : '?'}] do not match this ${opt.name}'s [${sizes(mine.groups)}]`);
  }
  if (!Array.isArray(saved.state) || saved.state.length !== mine.state.length) {
    fail(`optimizer state for ${saved.state?.length} parameters, this ${opt.name} has ${mine.state.length}`);
  }
  const used = new Set<string>();
  mine.state.forEach((st, i) => {
    const want = Object.keys(st.buffers).sort().join(', ');
    const names = saved.state[i]?.bufferNames;
    if (!Array.isArray(names) || [...names].sort().join(', ') !== want) {
      fail(`optimizer state of parameter ${i} has buffers [${names}], expected [${want}]`);
    }
    for (const [b, t] of Object.entries(st.buffers)) {
      const name = `${prefix}${i}.${b}`;
      const found = tensors.get(name) ?? fail(`optimizer tensor '${name}' is missing`);
      if (found.dtype !== 'F32' || found.shape.join(',') !== t.shape.join(',')) {
        fail(`optimizer tensor '${name}' is ${found.stored} [${found.shape}], expected F32 [${t.shape}]`);
      }
      used.add(name);
    }
  });
  const stray = [...tensors.keys()].filter((n) => n.startsWith(prefix) && !used.has(n));
  if (stray.length) fail(`optimizer tensors ${stray.join(', ')} belong to no parameter`);
  return (engine) => {
    const state = saved.state.map(({ bufferNames, ...rest }, i) => ({
      ...rest,
      buffers: io.uploadTensors(engine, bufferNames.map((b) => [b, tensors.get(`${prefix}${i}.${b}`)!] as [string, io.SafeTensor])),
    }));
    const { name: _name, ...dict } = saved;
    opt.loadStateDict({ ...dict, state } as optim.OptimizerStateDict<optim.GroupHyper>);
  };
}
