// Types of check-layers.mjs for the test that runs it.
export interface LayerReport {
  files: number;
  violations: string[];
  cycles: string[][];
}
export const PUBLIC: string[];
export const ALLOWED_CYCLES: string[][];
export function analyse(sources: Map<string, string>, allowedCycles?: string[][]): LayerReport;
export function checkLayers(): LayerReport;
