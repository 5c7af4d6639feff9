// Every op, as functions of tensors (PyTorch's torch.* / F.*).
export * from './elementwise.js';
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
export * from './loss.js';
export * from './attention.js';
export * from './interpolate.js';
