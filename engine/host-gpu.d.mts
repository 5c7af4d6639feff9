// Types of host-gpu.mjs for the TypeScript that imports it.
export interface HostFacts {
  /** Evidence of a GPU: /proc/driver/nvidia/gpus entries, /dev/nvidia*, /dev/dri/renderD*, nvidia-smi lines. */
  gpus: string[];
  nvidia: boolean;
  driverVersion: string | null;
  /** Path of libvulkan.so.1, or null when the loader is missing. */
  loader: string | null;
  /** ICD files the loader reads. */
  icds: string[];
  /** 'VK_DRIVER_FILES=...' (or VK_ICD_FILENAMES) where one replaces the loader's search folders. */
  icdOverride: string | null;
  /** NVIDIA ICD files present but not read by the loader. */
  nvidiaIcdsHidden: string[];
  container: boolean;
  driverCapabilities: string | null;
}
export interface HostProblem {
  missing: string;
  fix: string;
}
export interface Diagnosis {
  status: 'gpu' | 'no-gpu' | 'gpu-unused';
  gpus: string[];
  hardware: string[];
  problems: HostProblem[];
}
export type CommandRunner = (cmd: string, args: string[]) => string | null;
export const ICD_DIRS: string[];
export const LIB_DIRS: string[];
export function runCommand(cmd: string, args: string[]): string | null;
export function gatherHostFacts(host?: { root?: string; env?: Record<string, string | undefined>; run?: CommandRunner }): HostFacts;
export function diagnose(facts: HostFacts, adapters: { name: string; software: boolean }[]): Diagnosis;
export function formatDiagnosis(d: Diagnosis): string[];
export function unusedGpuWarning(d: Diagnosis, adapter: string | null, installing: boolean): string | null;
