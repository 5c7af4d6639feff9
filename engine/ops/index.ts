// Every op, as functions of tensors (PyTorch's torch.* / F.*).
export * from './elementwise.js';
export * from './reduce.js';
export * from './view.js';
export * from './matmul.js';
