// Reading and writing tensors (safetensors) and moving module state dicts through them.
export * from './safetensors.js';
export * from './state-dict.js';
