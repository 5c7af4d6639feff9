// The engine's shared WGSL snippets, by the name a shader includes them with (`#include "grid"`).
// WGSL has no include of its own; shader.ts pastes a snippet in place of the directive.

import affine from './affine.wgsl';
import bias from './bias.wgsl';
import attention from './attention.wgsl';
import dims from './dims.wgsl';
import gemm from './gemm.wgsl';
import grid from './grid.wgsl';
import nan from './nan.wgsl';
import reduce from './reduce.wgsl';
import rows from './rows.wgsl';
import strided from './strided.wgsl';

/** WGSL snippets a kernel source can `#include` by name (grid, rows, reduce, ...). */
export const SNIPPETS: Readonly<Record<string, string>> = { affine, attention, bias, dims, gemm, grid, nan, reduce, rows, strided };
