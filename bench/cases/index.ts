// Every bench case in run order; `hvp bench` filters this list and `hvp profile --case` looks names up in it.

import type { BenchCase } from '../case.js';
import { matmulCases } from './matmul.js';
import { convCases } from './conv.js';
import { copyCases } from './copy.js';
import { normCases } from './kernels-norm.js';
import { attentionCases } from './attention.js';
import { modelCases } from './models.js';
import { scoringCases } from './scoring.js';
import { hvpStepCases } from './hvp-step.js';
import { hostCases } from './host.js';
import { batchNormCases } from './batch-norm.js';
import { loaderCases } from './loader.js';
import { kitStepCases } from './kit.js';

// The peaks (copy, matmul) run first so a filtered or partial run still has them early in its output.
export const ALL: BenchCase[] = [...copyCases, ...matmulCases, ...convCases, ...normCases, ...batchNormCases, ...attentionCases, ...modelCases, ...scoringCases, ...hvpStepCases, ...hostCases, ...loaderCases, ...kitStepCases(false)];
