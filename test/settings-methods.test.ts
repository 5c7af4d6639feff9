// Every setting of `hvp pretrain` takes effect: the DINO, ViT and iBOT rows of test/settings-table.ts
// (the SimSiam and SimCLR rows run in test/settings.test.ts, in a worker of their own).

import { describeRows } from './settings-table.js';

describeRows(['dino', 'vit', 'ibot']);
