// Networks and heads (docs/method.md §3), with the parameter names of their PyTorch references.
export * from './heads.js';
export * from './resnet.js';
export * from './vit.js';
