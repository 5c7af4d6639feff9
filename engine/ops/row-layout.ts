// How the row kernels (layer norm, softmax) spread rows over threads, chosen from the row length.

import type { Engine } from '../engine.js';
import type { Defines } from '../shader.js';

/** A row kernel's launch: its workgroup size, workgroup count and template values (the "rows" snippet's TPR). */
export interface RowLayout {
  /** Threads per row. */
  tpr: number;
  /** Threads per workgroup (a multiple of tpr: wg / tpr rows per workgroup): the launch's workgroup size. */
  wg: number;
  /** Workgroups of the launch (`grid: { workgroups }`). */
  groups: number;
  defines: Defines;
  /** Names the variant (LaunchArgs.key). */
  key: string;
}

/**
 * A CPU adapter runs a workgroup's threads as SIMD lanes of one core and a barrier as a switch between
 * coroutines, so there a row gets one thread (a plain loop, no barriers) and a workgroup 64 rows. A GPU
 * gets about four elements per thread, at most 256 threads per row: a short row (ViT's 65 tokens) then
 * takes 32 threads instead of leaving most of a 256-thread workgroup idle, and a workgroup holds
 * several such rows.
 */
export function rowLayout(engine: Engine, rows: number, length: number): RowLayout {
  let tpr = 1;
  if (!engine.backend.isCpuAdapter) while (tpr < 256 && tpr * 4 < length) tpr *= 2;
  const wg = tpr === 1 ? 64 : 256;
  const groups = Math.max(Math.ceil(rows / (wg / tpr)), 1);
  return { tpr, wg, groups, defines: { TPR: tpr, SHARED: tpr > 1 }, key: `${tpr}` };
}
