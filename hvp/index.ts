// The HVP side of the package (`hvp-webgpu/hvp`): data sets and the batch loader, GPU augmented views,
// the SSL methods and their losses, pair selection, one HVP step and the pretraining loop, and the
// evaluators of frozen backbones (docs/method.md).

export * from './data/index.js';
export * from './views/index.js';
export * from './methods/index.js';
export * from './losses/index.js';
export * from './select/index.js';
export * from './eval/index.js';
export {
  METHODS,
  DEFAULTS,
  PRESETS,
  presetConfig,
  applyValues,
  validateConfig,
  effectiveLr,
  type MethodName,
  type TrainConfig,
} from './train/config.js';
export {
  hvpStep,
  drawParams,
  selectionForward,
  isLoggedStep,
  zeroTimes,
  type HvpStepOptions,
  type Scorer,
  type ScorerInput,
  type StepResult,
  type StepTimes,
} from './train/hvp-step.js';
export { pretrain, trainDataset, CHECKPOINT, type PretrainOptions, type PretrainResult } from './train/loop.js';
export { StopRequest, STOP_SIGNALS, signalExitCode, stoppedMessage, type StopSignal } from './train/stop.js';
export { DataParallel, shardRange, buckets, BUCKET_BYTES, type SyncTimes } from './distributed/data-parallel.js';
export { KnnMonitor, knnTop1, type KnnSets } from './train/knn-monitor.js';
// Checkpoints of a whole training state (weights, optimizer, configuration) in one safetensors file.
export {
  saveCheckpoint,
  loadCheckpoint,
  readCheckpointMeta,
  verifyChecksum,
  type SaveCheckpointOptions,
  type CheckpointMeta,
  type LoadCheckpointOptions,
  type LoadCheckpointResult,
} from '../models/checkpoint.js';
