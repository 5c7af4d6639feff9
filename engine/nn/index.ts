// Modules (PyTorch's torch.nn).
export { Module, type LoadResult } from './module.js';
export { Linear } from './linear.js';
