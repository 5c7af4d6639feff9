// Why Dawn does or does not see this host's GPU. Dawn reaches a GPU on Linux only through Vulkan: the
// loader (libvulkan.so.1), an ICD file naming the vendor's Vulkan driver, and in an NVIDIA container
// the `graphics` driver capability, without which the container toolkit mounts neither. The facts are
// gathered from a filesystem root, an environment and a command runner (so a test can lay out a fake
// host), and the diagnosis is a pure function of those facts and the adapters Dawn offers.
// Plain JavaScript, Node only: `npm run setup` imports it before anything is built, and `hvp doctor`
// and `--device gpu` through the bundle.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Folders the Vulkan loader reads ICD files from when VK_DRIVER_FILES / VK_ICD_FILENAMES are unset. */
export const ICD_DIRS = ['/etc/xdg/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/share/vulkan/icd.d'];
/** Where distributions and container images put libvulkan.so.1. */
export const LIB_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/lib64', '/usr/lib', '/lib', '/usr/local/lib'];
/** Where NVIDIA's GPU cloud images and the container toolkit's driver mounts put the driver, ICD file included. */
const NVIDIA_PREFIX = '/usr/local/nvidia';

/** Runs a command; its stdout, or null when it is missing or fails. */
export function runCommand(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 ? r.stdout : null;
}

const listDir = (dir) => {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
};

const readText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** Files (or every .json in a folder) of a colon-separated loader variable; host paths. */
function icdFilesOf(value, at) {
  const out = [];
  for (const p of (value ?? '').split(':').filter(Boolean)) {
    let isDir = false;
    try {
      isDir = statSync(at(p)).isDirectory();
    } catch {}
    if (isDir) for (const f of listDir(at(p))) if (f.endsWith('.json')) out.push(join(p, f));
    if (!isDir) out.push(p);
  }
  return out;
}

/** nvidia_icd*.json files under a folder, a few levels deep (host paths). */
function findNvidiaIcds(dir, at, depth = 3) {
  const out = [];
  for (const name of listDir(at(dir))) {
    const p = join(dir, name);
    if (/^nvidia_icd.*\.json$/.test(name)) out.push(p);
    else if (depth > 0) {
      let isDir = false;
      try {
        isDir = statSync(at(p)).isDirectory();
      } catch {}
      if (isDir) out.push(...findNvidiaIcds(p, at, depth - 1));
    }
  }
  return out;
}

/**
 * What this host holds that decides whether Dawn can reach a GPU. `root` is the filesystem root the
 * paths are read under ('/' for the real host), `env` the environment, `run` a command runner.
 */
export function gatherHostFacts({ root = '/', env = process.env, run = runCommand } = {}) {
  const at = (p) => join(root, p);
  const gpus = [];
  for (const id of listDir(at('/proc/driver/nvidia/gpus'))) gpus.push(`/proc/driver/nvidia/gpus/${id}`);
  for (const f of listDir(at('/dev'))) if (/^nvidia\d+$/.test(f)) gpus.push(`/dev/${f}`);
  for (const f of listDir(at('/dev/dri'))) if (/^renderD\d+$/.test(f)) gpus.push(`/dev/dri/${f}`);
  const smi = run('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader']);
  const smiGpus = (smi ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  for (const line of smiGpus) gpus.push(`nvidia-smi: ${line}`);
  const procVersion = readText(at('/proc/driver/nvidia/version'));
  const driverVersion =
    /Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)/.exec(procVersion ?? '')?.[1] ?? /,\s*(\d+(?:\.\d+)+)\s*$/.exec(smiGpus[0] ?? '')?.[1] ?? null;
  const nvidia = gpus.some((g) => /nvidia/.test(g));

  // The loader: what ld.so would find (its cache, LD_LIBRARY_PATH), then the usual folders.
  const ldcache = run('ldconfig', ['-p']) ?? run('/sbin/ldconfig', ['-p']) ?? '';
  const cached = /libvulkan\.so\.1 \(.*\) => (\S+)/.exec(ldcache)?.[1];
  const libDirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LIB_DIRS];
  const loader = cached ?? libDirs.map((d) => join(d, 'libvulkan.so.1')).find((p) => existsSync(at(p))) ?? null;

  // ICD files the loader will read: the override variables replace the search folders.
  const override = env.VK_DRIVER_FILES ? 'VK_DRIVER_FILES' : env.VK_ICD_FILENAMES ? 'VK_ICD_FILENAMES' : null;
  const searched = override
    ? icdFilesOf(env[override], at)
    : ICD_DIRS.flatMap((d) => listDir(at(d)).filter((f) => f.endsWith('.json')).map((f) => join(d, f)));
  const icds = [...searched, ...icdFilesOf(env.VK_ADD_DRIVER_FILES, at)].filter((p) => existsSync(at(p)));
  // NVIDIA ICD files the loader will not read: under /usr/local/nvidia, or in the usual folders while an override hides them.
  const hidden = [...findNvidiaIcds(NVIDIA_PREFIX, at), ...(override ? ICD_DIRS.flatMap((d) => findNvidiaIcds(d, at, 0)) : [])];
  const nvidiaIcdsHidden = hidden.filter((p) => !icds.includes(p));

  const container = existsSync(at('/.dockerenv')) || existsSync(at('/run/.containerenv')) || env.NVIDIA_VISIBLE_DEVICES !== undefined || env.KUBERNETES_SERVICE_HOST !== undefined;
  return {
    gpus,
    nvidia,
    driverVersion,
    loader,
    icds,
    icdOverride: override ? `${override}=${env[override]}` : null,
    nvidiaIcdsHidden,
    container,
    driverCapabilities: env.NVIDIA_DRIVER_CAPABILITIES ?? null,
  };
}

const isNvidiaIcd = (p) => /nvidia/i.test(p);
const hasGraphics = (caps) => caps !== null && /(^|,)\s*(graphics|all)\s*(,|$)/.test(caps);

/**
 * The verdict on a host: `adapters` are those Dawn offers ({ name, software }). status is 'gpu' (Dawn
 * sees a hardware adapter), 'no-gpu' (none is present: the software adapter is what this host has),
 * or 'gpu-unused' (a GPU is present, Dawn offers only software or nothing); problems name each
 * missing piece and the command that fixes it, in the order to fix them.
 */
export function diagnose(facts, adapters) {
  const hardware = adapters.filter((a) => !a.software).map((a) => a.name);
  if (hardware.length) return { status: 'gpu', gpus: facts.gpus, hardware, problems: [] };
  if (!facts.gpus.length) {
    const problems = adapters.length
      ? []
      : [{ missing: 'a Vulkan driver (no adapter at all)', fix: 'npm run setup (as root on Debian/Ubuntu: installs Mesa\'s lavapipe)' }];
    return { status: 'no-gpu', gpus: [], hardware, problems };
  }
  const problems = [];
  if (!facts.loader) {
    problems.push({ missing: 'the Vulkan loader libvulkan.so.1', fix: 'apt-get install libvulkan1' });
  }
  // Without `graphics` the container toolkit mounts neither the ICD file nor the library it names.
  const capsMissing = facts.nvidia && facts.container && !hasGraphics(facts.driverCapabilities);
  if (capsMissing) {
    const caps = facts.driverCapabilities ?? 'unset, so compute,utility';
    problems.push({
      missing: `graphics in NVIDIA_DRIVER_CAPABILITIES (${caps}): no NVIDIA Vulkan driver in the container`,
      fix: 'run the container with -e NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics (or all)',
    });
  }
  if (facts.nvidia && !facts.icds.some(isNvidiaIcd)) {
    if (facts.nvidiaIcdsHidden.length) {
      const why = facts.icdOverride ? ` (${facts.icdOverride} names only other drivers)` : '';
      problems.push({
        missing: `the loader is not told of the NVIDIA ICD ${facts.nvidiaIcdsHidden[0]}${why}`,
        fix: `export VK_DRIVER_FILES=${facts.nvidiaIcdsHidden[0]}`,
      });
    } else if (!capsMissing) {
      const major = facts.driverVersion?.split('.')[0];
      problems.push({
        missing: 'the NVIDIA ICD (nvidia_icd.json, the Vulkan part of the NVIDIA driver)',
        fix: major
          ? `install the driver's Vulkan part for driver ${facts.driverVersion}: apt-get install libnvidia-gl-${major} (Ubuntu) or nvidia-vulkan-icd (Debian)`
          : "install the NVIDIA driver's Vulkan part: apt-get install libnvidia-gl-<driver major> (Ubuntu) or nvidia-vulkan-icd (Debian)",
      });
    }
  }
  if (!facts.nvidia && !facts.icds.some((p) => !/lvp|lavapipe|swiftshader/i.test(p))) {
    problems.push({ missing: 'a Vulkan driver for the GPU behind /dev/dri', fix: 'apt-get install mesa-vulkan-drivers (RADV for AMD, ANV for Intel)' });
  }
  if (!problems.length) {
    problems.push({
      missing: 'nothing visible: the loader, the ICD and the device nodes are all there',
      fix: 'check `vulkaninfo --summary` and `nvidia-smi`: the ICD\'s driver library must match the kernel driver\'s version',
    });
  }
  return { status: 'gpu-unused', gpus: facts.gpus, hardware, problems };
}

/** The diagnosis as lines for a terminal. */
export function formatDiagnosis(d) {
  if (d.status === 'gpu') return [`Dawn sees a GPU: ${d.hardware.join('; ')}.`];
  const lines = [];
  if (d.status === 'no-gpu') {
    lines.push('No GPU on this host (no /proc/driver/nvidia/gpus, /dev/nvidia*, /dev/dri/renderD*, nvidia-smi):');
    lines.push('  a software adapter (lavapipe) running on the CPU is what it has.');
  } else {
    const more = d.gpus.length > 3 ? ` and ${d.gpus.length - 3} more` : '';
    lines.push(`A GPU is present (${d.gpus.slice(0, 3).join(', ')}${more}),`);
    lines.push('but Dawn offers only a software adapter (or none), so work would run on the CPU.');
  }
  for (const p of d.problems) {
    lines.push(`Missing: ${p.missing}`);
    lines.push(`  fix: ${p.fix}`);
  }
  return lines;
}

/**
 * Setup's warning for a host whose GPU Dawn does not reach, in a box that stands out among apt's
 * output; null where there is nothing to warn of. `adapter` is the software adapter's name, if any.
 */
export function unusedGpuWarning(d, adapter, installing) {
  if (d.status !== 'gpu-unused') return null;
  const lines = [
    'WARNING: this host has a GPU, but WebGPU (Dawn) cannot reach it.',
    ...formatDiagnosis(d),
    installing
      ? "Installing Mesa's lavapipe as a fallback: a software adapter that runs on the CPU, many times slower."
      : adapter
        ? `Everything would run on the software adapter (${adapter}), on the CPU.`
        : 'Nothing can run until Dawn has an adapter.',
    'Fix the above, then check with `hvp doctor`; `--device gpu` refuses to run on the CPU.',
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const bar = '!'.repeat(width + 4);
  return ['', bar, ...lines.map((l) => `! ${l.padEnd(width)} !`), bar, ''].join('\n');
}
