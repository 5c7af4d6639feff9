// Acquiring a WebGPU adapter and device: Dawn's Node bindings (npm `webgpu`) under Node, and
// `navigator.gpu` in a browser, through the same code path.

import { throttleDawnPolling } from './dawn-polling.js';

/** How Engine.create picks its WebGPU adapter and kernel variants. */
export interface DeviceOptions {
  /** Prefer a discrete/high-performance adapter where there is a choice. */
  powerPreference?: GPUPowerPreference;
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
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** Adapters that run on the CPU: their work shares the cores with this process. */
export const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i;

async function gpuEntryPoint(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!isNode) throw new Error('WebGPU is not available in this browser (navigator.gpu is undefined)');
  // Mesa prints a warning on every start when XDG_RUNTIME_DIR is unset; it is noise for a compute-only user.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const dawn = (await import('webgpu')) as unknown as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  // Dawn's Node module exposes the GPU* classes (GPUBufferUsage, ...) as globals for code written for browsers.
  Object.assign(globalThis, dawn.globals);
  return dawn.create([]);
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

export async function acquireDevice(opts: DeviceOptions = {}): Promise<AcquiredDevice> {
  const gpu = await gpuEntryPoint();
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(isNode ? NO_ADAPTER_HELP : NO_BROWSER_ADAPTER_HELP);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  // Ask for every limit the adapter supports: large storage bindings and 16 buffers per stage matter for
  // big activations and fused kernels, and the defaults (128 MiB, 8 buffers) are lower than most adapters allow.
  const requiredLimits: Record<string, number> = {};
  const lim = adapter.limits as unknown as Record<string, number>;
  for (const key in lim) {
    if (typeof lim[key] === 'number') requiredLimits[key] = lim[key];
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'hvp-webgpu' });
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.device, info.description]
    .filter((s) => s && s.length > 0)
    .join(' / ') || 'unknown adapter';
  // Dawn's busy-polling for finished work would take a core from a CPU adapter (dawn-polling.ts).
  if (isNode && SOFTWARE_ADAPTER.test(description)) throttleDawnPolling();
  return { gpu, adapter, device, features: new Set(requiredFeatures), description };
}
