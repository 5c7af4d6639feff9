// Public surface of the engine.
export { Engine } from './engine.js';
export { Tensor, type DType } from './engine.js';
export { Runtime } from './runtime.js';
export { DeviceLostError } from './device.js';
export { chromeTrace, formatKernelTable, kernelTable, type Profile } from './profile.js';
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
  kernelHeader,
  uniformLayout,
  uniformStruct,
  type BindingType,
  type Bindings,
  type KernelSpec,
  type LaunchArgs,
  type UniformFields,
  type UniformType,
  type UniformValues,
} from './kernel.js';
export { resolveIncludes, SNIPPETS, type Defines, type Snippets } from './shader.js';
export { setDeviceDefaults, type DeviceOptions } from './device.js';
export { DEVICE_SETTINGS_HELP, takeDeviceSettings } from './device-settings.js';
