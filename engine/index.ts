// Public surface of the engine (the package's main entry, `hvp-webgpu`): tensors and autograd, ops,
// layers, optimizers, safetensors I/O and the kernel API. The runtime behind an engine, the generated
// WGSL header and the uniform layout stay internal (engine/runtime.ts, engine/kernel.ts).
export { Engine, Tensor, type DType, type BackwardOptions } from './engine.js';
export type { DeviceOptions } from './device.js';
export { chromeTrace, formatKernelTable, kernelTable, type Profile, type ProfileClock, type DispatchRecord, type KernelRow } from './profile.js';
export { Rng } from './rng.js';
export * from './shape.js';
export * as ops from './ops/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as io from './io/index.js';
export {
  defineKernel,
  grid1d,
  KernelDef,
  uniformStruct,
  type BindingSpec,
  type BindingType,
  type Bindings,
  type KernelSpec,
  type LaunchArgs,
  type UniformFields,
  type UniformType,
  type UniformValue,
  type UniformValues,
  type ScalarType,
  type VectorType,
} from './kernel.js';
export { resolveIncludes, SNIPPETS, type Defines, type DefineValue, type Snippets } from './shader.js';
