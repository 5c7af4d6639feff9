// Evaluation of frozen backbones (docs/method.md §6): weighted k-NN and the linear probe.
export * from './backbone.js';
export * from './features.js';
export * from './knn.js';
export * from './linear-probe.js';
export { type FeatureRows, rowBlocks, featureShape } from './rows.js';
export * from './knn-splits.js';
