export * from './method.js';
export { buildBackbone, type StudentBackbone } from './backbone.js';
import type { Method, MethodInit } from './method.js';
import { createSimSiam } from './simsiam.js';
import { createSimClr } from './simclr.js';
import { createDino } from './dino.js';
import { createIbot } from './ibot.js';

/** The SSL method (SimSiam, SimCLR, DINO, iBOT) of a training configuration, with its model and optimizer. */
export function createMethod(init: MethodInit): Method {
  switch (init.config.method) {
    case 'simsiam':
      return createSimSiam(init);
    case 'simclr':
      return createSimClr(init);
    case 'dino':
      return createDino(init);
    case 'ibot':
      return createIbot(init);
  }
}
