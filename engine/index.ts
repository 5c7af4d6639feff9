// Public surface of the engine (the package's main entry, `hvp-webgpu`): tensors and autograd, ops,
// layers, optimizers, safetensors I/O and the kernel API. The runtime behind an engine, the generated
// WGSL header and the uniform layout stay internal (engine/runtime.ts, engine/kernel.ts).
export { Engine, Tensor, type DType, type BackwardOptions } from './engine.js';
export type { DeviceOptions } from './device.js';
export { chromeTrace, formatKernelTable, kernelTable, type Profile, type ProfileClock, type DispatchRecord, type KernelRow } from './profile.js';
export { DeviceLostError, setDeviceDefaults } from './device.js';
export { Rng } from './rng.js';
export * from './shape.js';
/** Differentiable tensor operations: elementwise, reductions, views, matmul, convolution, pooling, normalisation, losses, attention. */
export * as ops from './ops/index.js';
/** Layers as PyTorch names them: Module, Linear, Conv2d, BatchNorm, LayerNorm, Sequential. */
export * as nn from './nn/index.js';
/** Optimizers (SGD, AdamW), schedules, gradient clipping and the EMA update. */
export * as optim from './optim/index.js';
/** Safetensors files: read, write, and move state dicts between files and modules. */
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
  type LaunchGrid,
  type WorkgroupSize,
  type UniformFields,
  type UniformType,
  type UniformValue,
  type UniformValues,
  type ScalarType,
  type VectorType,
} from './kernel.js';
export { resolveIncludes, SNIPPETS, type Defines, type DefineValue, type Snippets } from './shader.js';
export { DEVICE_SETTINGS_HELP, takeDeviceSettings } from './device-settings.js';
