// Modules (PyTorch's torch.nn).
export { Module, type LoadResult } from './module.js';
export { Linear } from './linear.js';
export { Conv2d, type Conv2dConfig } from './conv.js';
export { BatchNorm, BatchNorm1d, BatchNorm2d, setBatchStatsOnly, setSyncBatchNorm, type BatchNormConfig, type BatchNormEpilogue } from './batch-norm.js';
export { LayerNorm, type LayerNormConfig } from './layer-norm.js';
export { Sequential, chain, type Layer, type Step } from './sequential.js';
