// Networks and heads (docs/method.md §3), with the parameter names of their PyTorch references.
export * from './heads.js';
export * from './resnet.js';
export * from './vit.js';
export { WeightNormLinear } from './head-layers.js';
export { PatchEmbed, Attention, Mlp, Block, type DropPathSeeds } from './vit-blocks.js';
// Backbones by name. (Checkpoint files, which need Node's file system, are in the `hvp` entry.)
export * from './backbone.js';
