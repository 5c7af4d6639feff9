// HVP's selection machinery: candidate combinations, fused per-method scores, per-sample selection and
// the gather of the selected views.
export * from './combinations.js';
export { scoreSimSiam } from './score-simsiam.js';
export { scoreSimClr } from './score-simclr.js';
export { scoreDino, scoreIbot, type DinoScoreOptions, type IbotScoreInputs, type IbotScoreOptions } from './score-dino.js';
export { selectCombination, randomChoice, randomDraws, readSelection, scoreSum, SELECT_MODES, type SelectMode, type Selection } from './select.js';
export { gatherSelected, type GatherOptions } from './gather.js';
export type { TableLike } from './common.js';
