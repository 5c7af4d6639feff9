// The device settings a user gives any command that opens the GPU: --device, --adapter and --kernels
// (or HVP_DEVICE, HVP_ADAPTER, HVP_KERNELS), taken out of a command line wherever they stand.

import type { DeviceOptions } from './device.js';

const CHOICES = ['auto', 'gpu', 'cpu'] as const;

/** The help text of the device settings, shared by `hvp --help` and each command's. */
export const DEVICE_SETTINGS_HELP = `Device options (any command that opens the GPU; also as HVP_DEVICE, HVP_ADAPTER, HVP_KERNELS):
  --device auto|gpu|cpu   gpu: refuse a software adapter and say what the host lacks (exit 1);
                          cpu: take the software (fallback) adapter; auto (default): Dawn's first
  --adapter NAME          the first adapter whose name contains NAME (\`hvp doctor\` lists them)
  --kernels auto|gpu|cpu  kernel variants; auto (default): CPU-friendly ones on a software adapter`;

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
  const given: Record<string, string | undefined> = { device: env.HVP_DEVICE, adapter: env.HVP_ADAPTER, kernels: env.HVP_KERNELS };
  const source: Record<string, string> = { device: 'HVP_DEVICE', adapter: 'HVP_ADAPTER', kernels: 'HVP_KERNELS' };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const m = /^--(device|adapter|kernels)(?:=(.*))?$/.exec(arg);
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
  }
  return { rest, settings };
}
