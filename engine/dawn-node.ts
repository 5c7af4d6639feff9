// Dawn's Node module (npm `webgpu`) and what surrounds it: instance flags, adapter requests with
// Dawn's notices kept out of the terminal, the list of every adapter Dawn sees, and why a host's GPU
// is not among them. Node only: the browser bundle replaces this module with a stub.

import { describeAdapter, isSoftwareAdapter } from './adapter-info.js';
import { withNativeStderrFiltered } from './native-stderr.js';
import { diagnose, formatDiagnosis, gatherHostFacts } from './host-gpu.mjs';

interface DawnModule {
  create: (flags: string[]) => GPU;
  globals: Record<string, unknown>;
}

/**
 * Notices Dawn prints on stderr whenever it initialises a Vulkan adapter whose dynamic-buffer limits
 * exceed its own (lavapipe reports a million): the limits are clamped, which concerns no user.
 */
export const DAWN_NOTICES = [
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/,
];

async function dawnModule(): Promise<DawnModule> {
  // Mesa prints a warning on every start when XDG_RUNTIME_DIR is unset; it is noise for a compute-only user.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const dawn = (await import('webgpu')) as unknown as DawnModule;
  // Dawn's Node module exposes the GPU* classes (GPUBufferUsage, ...) as globals for code written for browsers.
  Object.assign(globalThis, dawn.globals);
  return dawn;
}

/** A Dawn instance with create() flags: `backend=vulkan`, `adapter=NAME` (first adapter whose name contains NAME). */
export async function createDawn(flags: string[] = []): Promise<GPU> {
  return (await dawnModule()).create(flags);
}

/**
 * gpu.requestAdapter without Dawn's clamp notices: Dawn finds and initialises adapters inside the
 * call itself, before its promise is returned, so the filter spans exactly that work. Whatever
 * else Dawn, the Vulkan loader or a driver prints there still reaches stderr.
 */
export function requestAdapterQuietly(gpu: GPU, options: GPURequestAdapterOptions): Promise<GPUAdapter | null> {
  return withNativeStderrFiltered(() => gpu.requestAdapter(options), DAWN_NOTICES);
}

/** Dawn's own list of adapters, printed when adapter=NAME matches none: `[backend, name]` pairs. */
async function adapterNames(backend: string): Promise<[string, string][]> {
  const gpu = await createDawn([`backend=${backend}`, 'adapter=<no adapter has this name>']);
  try {
    await requestAdapterQuietly(gpu, {});
    return [];
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    return [...text.matchAll(/^ \* backend: '([^']*)', name: '(.*)'$/gm)].map((m) => [m[1], m[2]]);
  }
}

export interface AdapterReport {
  backend: string;
  /** Dawn's name of the adapter (AdapterInfo.device): what `--adapter` matches. */
  name: string;
  description: string;
  /** How many adapters of this backend share the name. */
  count: number;
  fallback: boolean;
  software: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** Backends Dawn's Node module may offer on Linux; Vulkan is the one the engine uses. */
const BACKENDS = ['vulkan', 'opengl', 'opengles'];

/**
 * Every adapter Dawn sees, across backends. requestAdapter returns only the first one, so the names
 * come from the list Dawn gives when `adapter=` matches none, and each is then opened by name.
 */
export async function listAdapters(): Promise<AdapterReport[]> {
  const out: AdapterReport[] = [];
  for (const backend of BACKENDS) {
    const names = await adapterNames(backend);
    const counts = new Map<string, number>();
    for (const [, name] of names) counts.set(name, (counts.get(name) ?? 0) + 1);
    for (const [name, count] of counts) {
      const gpu = await createDawn([`backend=${backend}`, `adapter=${name}`]);
      const adapter = await requestAdapterQuietly(gpu, {}).catch(() => null);
      if (!adapter) continue;
      const lim = adapter.limits as unknown as Record<string, number>;
      const limits: Record<string, number> = {};
      for (const key in lim) if (typeof lim[key] === 'number') limits[key] = lim[key];
      out.push({
        backend,
        name,
        description: describeAdapter(adapter.info),
        count,
        fallback: !!adapter.info.isFallbackAdapter,
        software: isSoftwareAdapter(adapter.info),
        features: [...adapter.features].sort(),
        limits,
      });
    }
  }
  return out;
}

/** Why this host's GPU, if it has one, is not what Dawn offers: the diagnosis as lines. */
export function explainHost(adapters: { name: string; software: boolean }[]): string[] {
  return formatDiagnosis(diagnose(gatherHostFacts(), adapters));
}
