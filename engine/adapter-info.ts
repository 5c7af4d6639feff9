// What an adapter is, in words: its description, and whether it runs on the CPU.

/** Adapters that run on the CPU: their work shares the cores with this process. */
export const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i;

/** Vendor, architecture, device and driver description, those that are set. */
export function describeAdapter(info: GPUAdapterInfo): string {
  return [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0).join(' / ') || 'unknown adapter';
}

/** A CPU adapter: Dawn's fallback flag (a CPU-type Vulkan device), or a known software driver by name. */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return !!info.isFallbackAdapter || SOFTWARE_ADAPTER.test(describeAdapter(info));
}
