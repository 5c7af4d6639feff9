// Acquiring a WebGPU adapter and device: Dawn's Node bindings (npm `webgpu`, through dawn-node.ts)
// under Node, and `navigator.gpu` in a browser, through the same code path. The user's device
// settings (--device, --adapter, --kernels) arrive once through setDeviceDefaults.

import { describeAdapter, isSoftwareAdapter, SOFTWARE_ADAPTER } from './adapter-info.js';
import { throttleDawnPolling } from './dawn-polling.js';

export { SOFTWARE_ADAPTER };

/** How Engine.create picks its WebGPU adapter and kernel variants. */
export interface DeviceOptions {
  /** Prefer a discrete/high-performance adapter where there is a choice. */
  powerPreference?: GPUPowerPreference;
  /**
   * 'gpu' refuses a software adapter, with what the host lacks for its GPU; 'cpu' asks for the
   * software (fallback) adapter even where a GPU is present; 'auto' takes the adapter Dawn offers first.
   */
  device?: 'auto' | 'gpu' | 'cpu';
  /** Under Node, the first adapter whose name contains this (Dawn's `adapter=` flag, case-sensitive). */
  adapter?: string;
  /**
   * Kernel variants: 'auto' picks CPU-friendly variants on software adapters (lavapipe, SwiftShader)
   * and GPU ones elsewhere; 'gpu' / 'cpu' force one family (tests use 'gpu' to cover the GPU
   * variants on lavapipe).
   */
  kernels?: 'auto' | 'gpu' | 'cpu';
}

export interface AcquiredDevice {
  /** Must stay referenced while the device lives: Dawn's instance is freed when its GPU object is collected. */
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  features: Set<string>;
  description: string;
  /** The adapter runs on the CPU (isSoftwareAdapter): decided once here for every caller. */
  software: boolean;
  /** The kernel family asked for (DeviceOptions.kernels after the process-wide settings). */
  kernels: 'auto' | 'gpu' | 'cpu';
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

let defaults: DeviceOptions = {};

/**
 * Process-wide device settings (the command line's --device, --adapter, --kernels), set once at the
 * program's edge; the options an acquireDevice call passes override them.
 */
export function setDeviceDefaults(settings: DeviceOptions): void {
  defaults = { ...settings };
}

export const NO_ADAPTER_HELP = [
  'No WebGPU adapter was found.',
  'On Debian/Ubuntu, `npm run setup` (as root) installs Mesa\'s software Vulkan driver lavapipe:',
  '  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
  '  apt-get update && apt-get install -t bookworm-backports mesa-vulkan-drivers',
  'Mesa 22 (Debian bookworm proper) is refused by Dawn; Mesa 25 works. On other systems install a',
  'Vulkan driver for your GPU (or lavapipe from Mesa >= 24) and check `vulkaninfo --summary`.',
].join('\n');

const NO_BROWSER_ADAPTER_HELP =
  'This browser exposes WebGPU (navigator.gpu) but offers no adapter: enable hardware acceleration, or on ' +
  'Linux start Chromium with --enable-unsafe-webgpu (and --use-webgpu-adapter=swiftshader without a GPU).';

/** Optional features we use when the adapter offers them. */
const WANTED_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

async function requestAdapter(opts: DeviceOptions): Promise<{ gpu: GPU; adapter: GPUAdapter | null }> {
  const options: GPURequestAdapterOptions = { powerPreference: opts.powerPreference ?? 'high-performance' };
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) {
    if (opts.adapter) throw new Error(`--adapter '${opts.adapter}': a browser picks its adapter itself`);
    return { gpu: nav.gpu, adapter: await nav.gpu.requestAdapter({ ...options, forceFallbackAdapter: opts.device === 'cpu' }) };
  }
  if (!isNode) throw new Error('WebGPU is not available in this browser (navigator.gpu is undefined)');
  const dawn = await import('./dawn-node.js');
  const gpu = await dawn.createDawn(opts.adapter ? [`adapter=${opts.adapter}`] : []);
  try {
    let adapter = await dawn.requestAdapterQuietly(gpu, options);
    // Dawn finds a CPU Vulkan device (lavapipe) only in a plain request; once found, an instance's
    // later request for the fallback adapter returns it.
    if (opts.device === 'cpu' && adapter && !isSoftwareAdapter(adapter.info)) {
      adapter = await dawn.requestAdapterQuietly(gpu, { ...options, forceFallbackAdapter: true });
    }
    return { gpu, adapter };
  } catch (e) {
    if (!opts.adapter) throw e;
    // Dawn rejects with the adapters it has: "no suitable backends found\nAvailable adapters:\n * backend: ...".
    const list = String(e instanceof Error ? e.message : e).replace(/^[^\n]*\n?/, '');
    throw new Error(`--adapter '${opts.adapter}': no adapter's name contains it (case-sensitive).\n${list || 'Dawn offers no adapter.'}`);
  }
}

/** What the host lacks for its GPU (Node), for a refusal or a missing adapter. */
async function hostHelp(adapters: { name: string; software: boolean }[]): Promise<string> {
  if (!isNode) return NO_BROWSER_ADAPTER_HELP;
  const lines = (await import('./dawn-node.js')).explainHost(adapters);
  return [...lines, '`hvp doctor` lists every adapter Dawn sees.'].join('\n');
}

export async function acquireDevice(given: DeviceOptions = {}): Promise<AcquiredDevice> {
  const opts = { ...defaults, ...given };
  const { gpu, adapter } = await requestAdapter(opts);
  if (!adapter) {
    if (opts.device === 'cpu') throw new Error(`--device cpu: no software adapter is available.\n${isNode ? NO_ADAPTER_HELP : ''}`);
    throw new Error(isNode ? `${NO_ADAPTER_HELP}\n${await hostHelp([])}` : NO_BROWSER_ADAPTER_HELP);
  }
  const description = describeAdapter(adapter.info);
  const software = isSoftwareAdapter(adapter.info);
  if (opts.device === 'gpu' && software) {
    throw new Error(
      `--device gpu: the only adapter offered is a software one (${description}), which runs on the CPU.\n` +
        (await hostHelp([{ name: description, software: true }])),
    );
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  // Ask for every limit the adapter supports: large storage bindings and 16 buffers per stage matter for
  // big activations and fused kernels, and the defaults (128 MiB, 8 buffers) are lower than most adapters allow.
  const requiredLimits: Record<string, number> = {};
  const lim = adapter.limits as unknown as Record<string, number>;
  for (const key in lim) {
    if (typeof lim[key] === 'number') requiredLimits[key] = lim[key];
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'hvp-webgpu' });
  // Dawn's busy-polling for finished work would take a core from a CPU adapter (dawn-polling.ts).
  if (isNode && software) throttleDawnPolling();
  return { gpu, adapter, device, features: new Set(requiredFeatures), description, software, kernels: opts.kernels ?? 'auto' };
}

/**
 * The WebGPU device is gone (a driver reset, a GPU fault, the device destroyed): every later launch,
 * upload, readback or sync of its engine fails with this error instead of hanging or reporting a
 * validation error of a dead device. `reason` and `dawnMessage` are what the device's `lost` promise
 * reported ('destroyed' or 'unknown', and the driver's words).
 */
export class DeviceLostError extends Error {
  override readonly name = 'DeviceLostError';
  constructor(
    readonly reason: string,
    readonly dawnMessage: string,
    /** What the engine was doing when it learnt of the loss. */
    readonly during: string,
  ) {
    super(`the WebGPU device was lost (${reason}${dawnMessage ? `: ${dawnMessage}` : ''}) during ${during}`);
  }
}
