// Every op, as functions of tensors (PyTorch's torch.* / F.*).
import { provideCoreOps } from '../engine.js';
import { runBackward } from '../backward.js';
import { expand } from './broadcast.js';
import { fill } from './elementwise.js';
import * as view from './view.js';

export * from './elementwise.js';
export * from './broadcast.js';
export * from './reduce.js';
export * from './view.js';
export * from './matmul.js';
export * from './gather.js';
export * from './concat.js';
export * from './dropout.js';
export * from './conv.js';
export * from './pool.js';
export * from './softmax.js';
export * from './layer-norm.js';
export * from './batch-norm.js';
export type { BatchNormSync } from './batch-norm-sync.js';
export * from './loss.js';
export * from './attention.js';
export * from './interpolate.js';

// Tensor methods, Engine.full and Engine.backward reach these through the engine's table (engine.ts).
provideCoreOps({
  alias: view.alias,
  contiguous: view.contiguous,
  reshape: view.reshape,
  permute: view.permute,
  transpose: view.transpose,
  slice: view.slice,
  expand,
  unsqueeze: view.unsqueeze,
  squeeze: view.squeeze,
  flatten: view.flatten,
  fill,
  backward: runBackward,
});
