// The device settings a user gives any command that opens the GPU: --device, --adapter and --kernels
// (or HVP_DEVICE, HVP_ADAPTER, HVP_KERNELS), taken out of a command line wherever they stand.

import type { DeviceOptions } from './device.js';

const CHOICES = ['auto', 'gpu', 'cpu'] as const;

/** The help text of the device settings, shared by `hvp --help` and each command's. */
export const DEVICE_SETTINGS_HELP = `Device options (any command that opens the GPU; also as HVP_DEVICE, HVP_ADAPTER, HVP_KERNELS):
  --device auto|gpu|cpu   gpu: refuse a software adapter and say what the host lacks (exit 1);
                          cpu: take the software (fallback) adapter; auto (default): Dawn's first
  --adapter NAME          the first adapter whose name contains NAME (\`hvp doctor\` lists them)
  --adapter-per-rank N0,N1,...  without --adapter, under mpirun/srun: local rank i takes the adapter
                          named Ni (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID; also as HVP_ADAPTERS)
  --kernels auto|gpu|cpu  kernel variants; auto (default): CPU-friendly ones on a software adapter`;

/** This process's rank among its node's ranks, as the launcher (Open MPI, MPICH, Slurm) announced it; 0 without one. */
function launcherLocalRank(env: Record<string, string | undefined>): number {
  for (const key of ['OMPI_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID', 'SLURM_LOCALID']) {
    const v = env[key];
    if (v !== undefined && v !== '' && Number.isInteger(Number(v)) && Number(v) >= 0) return Number(v);
  }
  return 0;
}

function choice(name: string, value: string | undefined): 'auto' | 'gpu' | 'cpu' {
  if (!(CHOICES as readonly (string | undefined)[]).includes(value)) {
    throw new Error(`${name} must be one of ${CHOICES.join(', ')}, got '${value ?? ''}'`);
  }
  return value as 'auto' | 'gpu' | 'cpu';
}

/**
 * The device settings of `env` and `argv` (a flag wins over its variable), and argv without them.
 * Flags are `--device gpu` or `--device=gpu`, anywhere before a `--`.
 */
export function takeDeviceSettings(argv: string[], env: Record<string, string | undefined>): { rest: string[]; settings: DeviceOptions } {
  const given: Record<string, string | undefined> = { device: env.HVP_DEVICE, adapter: env.HVP_ADAPTER, kernels: env.HVP_KERNELS, 'adapter-per-rank': env.HVP_ADAPTERS };
  const source: Record<string, string> = { device: 'HVP_DEVICE', adapter: 'HVP_ADAPTER', kernels: 'HVP_KERNELS', 'adapter-per-rank': 'HVP_ADAPTERS' };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const m = /^--(device|adapter-per-rank|adapter|kernels)(?:=(.*))?$/.exec(arg);
    if (!m) {
      rest.push(arg);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined || (m[2] === undefined && value.startsWith('--'))) throw new Error(`--${m[1]} needs a value`);
    given[m[1]] = value;
    source[m[1]] = `--${m[1]}`;
  }
  const settings: DeviceOptions = {};
  if (given.device !== undefined && given.device !== '') settings.device = choice(source.device, given.device);
  if (given.kernels !== undefined && given.kernels !== '') settings.kernels = choice(source.kernels, given.kernels);
  if (given.adapter !== undefined) {
    if (given.adapter === '') throw new Error(`${source.adapter} needs an adapter name (\`hvp doctor\` lists them)`);
    settings.adapter = given.adapter;
  } else if (given['adapter-per-rank'] !== undefined) {
    // Several GPUs of different names in one node, one rank each: the local rank picks its name.
    const names = given['adapter-per-rank'].split(',').map((n) => n.trim());
    const where = source['adapter-per-rank'];
    if (names.some((n) => n === '')) throw new Error(`${where} needs a comma-separated list of adapter names, one per local rank (\`hvp doctor\` lists them), got '${given['adapter-per-rank']}'`);
    const local = launcherLocalRank(env);
    if (local >= names.length) throw new Error(`${where} names ${names.length} adapter${names.length === 1 ? '' : 's'} but this process is local rank ${local}: name one per rank of the node`);
    settings.adapter = names[local];
  }
  return { rest, settings };
}
