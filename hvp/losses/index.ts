// The four SSL objectives, one module each (lightly's layout); a method picks its loss from here.
export { simsiamLoss, type PairLossOptions } from './simsiam.js';
export { ntXentLoss, type NtXentOptions } from './simclr.js';
export {
  DinoLoss,
  type DinoLossOptions,
  crossEntropyTable,
  crossViewMask,
  linspace,
  teacherTempSchedule,
} from './dino.js';
export { IbotLoss, type IbotLossOptions, type IbotOutputs, type IbotLossTerms } from './ibot.js';
