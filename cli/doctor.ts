// `hvp doctor`: every adapter Dawn sees, and when a GPU is present that Dawn does not offer, the
// missing piece (Vulkan loader, NVIDIA ICD, container capability) and the command that fixes it.

import { hostname } from 'node:os';
import { DEVICE_SETTINGS_HELP, Engine } from '../engine/index.js';
import { diagnose, formatDiagnosis, gatherHostFacts, listAdapters, type AdapterReport } from '../engine/node.js';
import { launcherLocalRank, launcherRank, launcherWorldSize } from '../hvp/distributed/mpi.js';

const DOCTOR_HELP = `Usage: hvp doctor

Lists the WebGPU adapters Dawn sees (backend, name, software or hardware, features, key limits), the
GPU evidence on this host (/proc/driver/nvidia, /dev/nvidia*, /dev/dri/renderD*, nvidia-smi), and,
where a GPU is present but Dawn offers only a software adapter, what is missing and how to fix it.
Exits 0 either way; \`--device gpu\` on any command is what refuses a software adapter.

Under mpirun or srun with several ranks, every rank first prints the adapter it opens with the device
options given (as \`hvp pretrain\` would open it) and the device-selection variables it sees
(DRI_PRIME, NVIDIA_VISIBLE_DEVICES, ...); only local rank 0 of each host prints the full report.

${DEVICE_SETTINGS_HELP}`;

/** Limits that decide what the engine can run: binding sizes, buffers per stage, workgroup sizes. */
const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
];

function adapterLines(a: AdapterReport): string[] {
  const kind = a.software ? `software${a.fallback ? ', fallback adapter' : ''}` : 'hardware';
  const count = a.count > 1 ? ` (x${a.count})` : '';
  return [
    `- ${a.backend}: ${a.name}${count} [${kind}]`,
    `    ${a.description}`,
    `    features: ${a.features.join(', ') || 'none'}`,
    ...KEY_LIMITS.filter((k) => k in a.limits).map((k) => `    ${k}: ${a.limits[k]}`),
  ];
}

/** The report as lines: adapters, host evidence, verdict. */
export async function doctorReport(): Promise<string[]> {
  const adapters = await listAdapters();
  const facts = gatherHostFacts();
  const lines = ['Adapters Dawn sees:', ...(adapters.length ? adapters.flatMap(adapterLines) : ['  none'])];
  lines.push('', 'Host:');
  lines.push(`  GPU evidence: ${facts.gpus.join(', ') || 'none'}`);
  lines.push(`  Vulkan loader: ${facts.loader ?? 'missing (libvulkan.so.1)'}`);
  lines.push(`  ICD files read by the loader${facts.icdOverride ? ` (${facts.icdOverride})` : ''}: ${facts.icds.join(', ') || 'none'}`);
  if (facts.nvidiaIcdsHidden.length) lines.push(`  NVIDIA ICD files the loader does not read: ${facts.nvidiaIcdsHidden.join(', ')}`);
  if (facts.container) lines.push(`  container: yes, NVIDIA_DRIVER_CAPABILITIES=${facts.driverCapabilities ?? '(unset)'}`);
  lines.push('', 'Verdict:', ...formatDiagnosis(diagnose(facts, adapters)).map((l) => `  ${l}`));
  return lines;
}

/** Variables that decide which GPU a process sees or picks. */
const SELECTION_VARS = ['DRI_PRIME', 'MESA_VK_DEVICE_SELECT', 'NVIDIA_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES', 'HVP_ADAPTER', 'HVP_ADAPTERS'];

/**
 * Under a launcher with several ranks, the line naming the adapter this rank opens (null for a
 * single process): one line per rank, so identical GPUs opened twice show as two equal lines.
 */
export async function rankAdapterLine(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const world = launcherWorldSize(env);
  if (world <= 1) return null;
  const engine = await Engine.create();
  const opened = engine.description;
  engine.destroy();
  const selection = SELECTION_VARS.filter((k) => env[k] !== undefined).map((k) => `${k}=${env[k]}`);
  return `rank ${launcherRank(env)} of ${world} (local rank ${launcherLocalRank(env)}, host ${hostname()}) opened: ${opened}; ${selection.length ? selection.join(' ') : 'no device-selection variables set'}`;
}

export async function doctorMain(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return console.log(DOCTOR_HELP);
  if (argv.length) throw new Error(`hvp doctor takes no arguments, got '${argv.join(' ')}'`);
  const line = await rankAdapterLine();
  if (line) console.log(line);
  if (line && launcherLocalRank() !== 0) return;
  console.log((await doctorReport()).join('\n'));
}
