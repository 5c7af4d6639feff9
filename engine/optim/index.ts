// Optimizers, schedules, clipping and the EMA (PyTorch's torch.optim plus DINO's utilities).
export { Optimizer, type GroupHyper, type GroupSpec, type ParamGroup, type ParamState, type OptimizerStateDict } from './optimizer.js';
export { SGD, type SGDHyper } from './sgd.js';
export { AdamW, type AdamWHyper } from './adamw.js';
export { LARS, larsExcluded, type LARSHyper } from './lars.js';
export { cosineSchedule } from './schedule.js';
export { clipGradNorm, clipGradients } from './clip.js';
export { emaUpdate } from './ema.js';
