// `hvp doctor` and the device settings: the host diagnosis on simulated hosts (a temporary folder laid
// out as a filesystem root, an environment, a fake command runner), each naming its fix; the real
// doctor on this machine; --device, --adapter and --kernels through the built CLI; and Dawn's clamp
// notices kept off stderr while the loader's and the engine's real errors still reach the user.

import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { defineKernel, Engine, takeDeviceSettings } from '../engine/index.js';
import { diagnose, formatDiagnosis, gatherHostFacts, unusedGpuWarning, type HostFacts } from '../engine/node.js';

const LOADER = '/usr/lib/x86_64-linux-gnu/libvulkan.so.1';
const LVP_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
const NVIDIA_ICD = '/usr/share/vulkan/icd.d/nvidia_icd.json';
const NVIDIA_GPU = ['/proc/driver/nvidia/gpus/0000:01:00.0/information', '/dev/nvidia0', '/dev/nvidiactl'];
const SMI = 'NVIDIA H100 80GB HBM3, 550.54.15\n';
const LAVAPIPE = [{ name: 'llvmpipe (LLVM 15.0.6, 256 bits)', software: true }];

/** A fake host: `files` created (empty) under a fresh root, commands answered from `commands`. */
function host(files: string[], opts: { env?: Record<string, string>; commands?: Record<string, string> } = {}): HostFacts {
  const root = mkdtempSync(join(tmpdir(), 'fake-host-'));
  for (const f of files) {
    mkdirSync(join(root, dirname(f)), { recursive: true });
    writeFileSync(join(root, f), '');
  }
  return gatherHostFacts({ root, env: opts.env ?? {}, run: (cmd) => opts.commands?.[cmd] ?? null });
}

function verdict(facts: HostFacts, adapters = LAVAPIPE) {
  const d = diagnose(facts, adapters);
  return { ...d, text: formatDiagnosis(d).join('\n') };
}

describe('host diagnosis on simulated hosts', () => {
  it('a GPU with no NVIDIA ICD: install the driver\'s Vulkan part, for its version', () => {
    const facts = host([...NVIDIA_GPU, LOADER, LVP_ICD], { commands: { 'nvidia-smi': SMI } });
    expect(facts.gpus).toEqual([...NVIDIA_GPU.slice(0, 1).map(dirname), '/dev/nvidia0', 'nvidia-smi: NVIDIA H100 80GB HBM3, 550.54.15']);
    expect(facts.driverVersion).toBe('550.54.15');
    const v = verdict(facts);
    expect(v.status).toBe('gpu-unused');
    expect(v.problems).toHaveLength(1);
    expect(v.problems[0].missing).toMatch(/NVIDIA ICD/);
    expect(v.problems[0].fix).toMatch(/apt-get install libnvidia-gl-550/);
    expect(v.text).toMatch(/A GPU is present .*\/dev\/nvidia0/);
    expect(v.text).toMatch(/fix: install the driver's Vulkan part for driver 550\.54\.15/);
  });

  it('a GPU with no Vulkan loader: apt-get install libvulkan1', () => {
    const facts = host([...NVIDIA_GPU, NVIDIA_ICD], { commands: { ldconfig: 'libc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n' } });
    expect(facts.loader).toBeNull();
    const v = verdict(facts, []);
    expect(v.status).toBe('gpu-unused');
    expect(v.problems.map((p) => p.fix)).toEqual(['apt-get install libvulkan1']);
    expect(v.text).toMatch(/Missing: the Vulkan loader libvulkan\.so\.1\n {2}fix: apt-get install libvulkan1/);
  });

  it('finds the loader through ld.so\'s cache or LD_LIBRARY_PATH', () => {
    const cache = 'libvulkan.so.1 (libc6,x86-64) => /opt/vk/libvulkan.so.1\n';
    expect(host([], { commands: { ldconfig: cache } }).loader).toBe('/opt/vk/libvulkan.so.1');
    expect(host(['/kit/lib/libvulkan.so.1'], { env: { LD_LIBRARY_PATH: '/kit/lib' } }).loader).toBe('/kit/lib/libvulkan.so.1');
  });

  it('a container whose NVIDIA_DRIVER_CAPABILITIES lacks graphics: run it with graphics', () => {
    const env = { NVIDIA_VISIBLE_DEVICES: 'all', NVIDIA_DRIVER_CAPABILITIES: 'compute,utility' };
    const facts = host(['/.dockerenv', ...NVIDIA_GPU, LOADER, LVP_ICD], { env, commands: { 'nvidia-smi': SMI } });
    expect(facts.container).toBe(true);
    const v = verdict(facts);
    // The capability is the cause: with it the toolkit mounts the ICD, so no driver install is suggested.
    expect(v.problems).toHaveLength(1);
    expect(v.problems[0].missing).toMatch(/graphics in NVIDIA_DRIVER_CAPABILITIES \(compute,utility\)/);
    expect(v.problems[0].fix).toBe('run the container with -e NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics (or all)');
    // With graphics (or all) granted, that problem is gone.
    for (const caps of ['compute,utility,graphics', 'all']) {
      const ok = verdict(host(['/.dockerenv', ...NVIDIA_GPU, LOADER, NVIDIA_ICD], { env: { ...env, NVIDIA_DRIVER_CAPABILITIES: caps } }));
      expect(ok.problems.some((p) => /NVIDIA_DRIVER_CAPABILITIES/.test(p.fix))).toBe(false);
    }
  });

  it('an NVIDIA ICD under /usr/local/nvidia that the loader is not told of: export VK_DRIVER_FILES', () => {
    const icd = '/usr/local/nvidia/icd.d/nvidia_icd.json';
    const facts = host([...NVIDIA_GPU, LOADER, LVP_ICD, icd]);
    expect(facts.nvidiaIcdsHidden).toEqual([icd]);
    const v = verdict(facts);
    expect(v.problems.map((p) => p.fix)).toEqual([`export VK_DRIVER_FILES=${icd}`]);
    // Once named, the loader reads it and the ICD is no longer what is missing.
    const named = host([...NVIDIA_GPU, LOADER, LVP_ICD, icd], { env: { VK_DRIVER_FILES: icd } });
    expect(named.icds).toEqual([icd]);
    expect(verdict(named).problems.some((p) => /NVIDIA ICD/.test(p.missing))).toBe(false);
  });

  it('VK_DRIVER_FILES naming only lavapipe hides the installed NVIDIA ICD', () => {
    const facts = host([...NVIDIA_GPU, LOADER, LVP_ICD, NVIDIA_ICD], { env: { VK_DRIVER_FILES: LVP_ICD } });
    expect(facts.icds).toEqual([LVP_ICD]);
    const v = verdict(facts);
    expect(v.problems[0].missing).toMatch(/VK_DRIVER_FILES=.*lvp_icd\.json names only other drivers/);
    expect(v.problems[0].fix).toBe(`export VK_DRIVER_FILES=${NVIDIA_ICD}`);
  });

  it('no GPU at all: nothing to fix, the software adapter is expected', () => {
    const facts = host([LOADER, LVP_ICD]);
    expect(facts.gpus).toEqual([]);
    const v = verdict(facts);
    expect(v.status).toBe('no-gpu');
    expect(v.problems).toEqual([]);
    expect(v.text).toMatch(/No GPU on this host/);
    // Without even a software adapter, setup is the fix.
    expect(verdict(facts, []).problems.map((p) => p.fix)).toEqual([expect.stringMatching(/^npm run setup/)]);
  });

  it('a hardware adapter: Dawn sees the GPU', () => {
    const v = verdict(host([...NVIDIA_GPU, LOADER, NVIDIA_ICD]), [{ name: 'NVIDIA H100 80GB HBM3', software: false }]);
    expect(v.status).toBe('gpu');
    expect(v.text).toBe('Dawn sees a GPU: NVIDIA H100 80GB HBM3.');
  });

  it('an AMD or Intel GPU (a render node, no NVIDIA) with only lavapipe installed: mesa-vulkan-drivers', () => {
    const v = verdict(host(['/dev/dri/renderD128', LOADER, LVP_ICD]));
    expect(v.problems.map((p) => p.fix)).toEqual([expect.stringMatching(/^apt-get install mesa-vulkan-drivers/)]);
  });
});

describe("setup's warning", () => {
  it('boxes the diagnosis and its fix where a GPU is present but unused, and says lavapipe is a fallback', () => {
    const d = diagnose(host([...NVIDIA_GPU, LVP_ICD]), []);
    const box = unusedGpuWarning(d, null, true)!.trim().split('\n');
    expect(box[0]).toMatch(/^!+$/);
    expect(box.at(-1)).toBe(box[0]);
    for (const line of box.slice(1, -1)) expect(line).toMatch(new RegExp(`^! .{${box[0].length - 4}} !$`));
    const text = box.join('\n');
    expect(text).toMatch(/WARNING: this host has a GPU, but WebGPU \(Dawn\) cannot reach it/);
    expect(text).toMatch(/fix: apt-get install libvulkan1/);
    expect(text).toMatch(/Installing Mesa's lavapipe as a fallback/);
    expect(unusedGpuWarning(d, 'llvmpipe', false)).toMatch(/Everything would run on the software adapter \(llvmpipe\)/);
  });

  it('says nothing on a host without a GPU, or where Dawn sees the GPU', () => {
    expect(unusedGpuWarning(diagnose(host([LOADER, LVP_ICD]), []), null, true)).toBeNull();
    expect(unusedGpuWarning(diagnose(host([...NVIDIA_GPU]), [{ name: 'H100', software: false }]), null, false)).toBeNull();
  });
});

describe('device settings', () => {
  it('are taken from anywhere in the command line, a flag over its variable', () => {
    const { rest, settings } = takeDeviceSettings(['pretrain', '--device', 'gpu', '--steps', '3', '--kernels=cpu', '--adapter', 'H100'], { HVP_DEVICE: 'cpu' });
    expect(rest).toEqual(['pretrain', '--steps', '3']);
    expect(settings).toEqual({ device: 'gpu', kernels: 'cpu', adapter: 'H100' });
    expect(takeDeviceSettings(['info'], { HVP_DEVICE: 'gpu', HVP_KERNELS: 'gpu' }).settings).toEqual({ device: 'gpu', kernels: 'gpu' });
    expect(takeDeviceSettings(['x', '--', '--device', 'gpu'], {}).rest).toEqual(['x', '--', '--device', 'gpu']);
  });

  it('--adapter-per-rank (or HVP_ADAPTERS) picks the adapter by the launcher\'s local rank, unless --adapter is given', () => {
    const list = ['pretrain', '--adapter-per-rank', 'A100,H100,L4'];
    expect(takeDeviceSettings(list, { OMPI_COMM_WORLD_LOCAL_RANK: '1' })).toEqual({ rest: ['pretrain'], settings: { adapter: 'H100' } });
    expect(takeDeviceSettings(list, { SLURM_LOCALID: '2' }).settings).toEqual({ adapter: 'L4' });
    expect(takeDeviceSettings(['info'], { HVP_ADAPTERS: 'A100, H100', OMPI_COMM_WORLD_LOCAL_RANK: '1' }).settings).toEqual({ adapter: 'H100' });
    // A single process (no launcher) is local rank 0.
    expect(takeDeviceSettings(list, {}).settings).toEqual({ adapter: 'A100' });
    expect(takeDeviceSettings([...list, '--adapter', 'L4'], { OMPI_COMM_WORLD_LOCAL_RANK: '1' }).settings).toEqual({ adapter: 'L4' });
    expect(takeDeviceSettings(list, { HVP_ADAPTER: 'A100', OMPI_COMM_WORLD_LOCAL_RANK: '2' }).settings).toEqual({ adapter: 'A100' });
    expect(() => takeDeviceSettings(list, { OMPI_COMM_WORLD_LOCAL_RANK: '3' })).toThrow('--adapter-per-rank names 3 adapters but this process is local rank 3: name one per rank of the node');
    expect(() => takeDeviceSettings(['info'], { HVP_ADAPTERS: 'A100,,L4' })).toThrow(/HVP_ADAPTERS needs a comma-separated list/);
  });

  it('refuse bad values and missing ones', () => {
    expect(() => takeDeviceSettings(['--device', 'tpu'], {})).toThrow("--device must be one of auto, gpu, cpu, got 'tpu'");
    expect(() => takeDeviceSettings(['info'], { HVP_KERNELS: 'fast' })).toThrow("HVP_KERNELS must be one of auto, gpu, cpu, got 'fast'");
    expect(() => takeDeviceSettings(['info', '--kernels'], {})).toThrow('--kernels needs a value');
    expect(() => takeDeviceSettings(['--adapter', '--device', 'gpu'], {})).toThrow('--adapter needs a value');
    expect(() => takeDeviceSettings(['--adapter='], {})).toThrow(/--adapter needs an adapter name/);
  });
});

const NOTICE = /artificially reduced/;

describe('the built CLI on this machine (lavapipe, no GPU)', () => {
  const root = new URL('..', import.meta.url).pathname;
  // stderr reaches the test through a shell pipe, as it reaches a terminal or `| tee`: Node's own
  // child_process would hand the CLI a socket, which the notice filter cannot reopen and leaves alone.
  const hvp = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync('bash', ['-c', 'set -o pipefail; "$0" "$@" 2>&1 >&3 | cat', process.execPath, 'dist/hvp.js', ...args], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env },
    });
    return { status: r.status, stdout: r.output[3] as string, stderr: r.output[1] as string };
  };
  beforeAll(() => {
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root });
  });

  it('hvp doctor lists lavapipe as a software adapter and finds nothing to fix', () => {
    const r = hvp(['doctor']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^- vulkan: llvmpipe .*\[software, fallback adapter\]$/m);
    expect(r.stdout).toMatch(/^ {4}maxStorageBufferBindingSize: \d+$/m);
    expect(r.stdout).toMatch(/Vulkan loader: \/.*libvulkan\.so\.1/);
    expect(r.stdout).toMatch(/No GPU on this host/);
    expect(r.stdout).not.toMatch(/Missing:/);
    expect(r.stderr).not.toMatch(NOTICE);
  });

  it('hvp doctor as one rank of a launched job names the adapter that rank opens; only local rank 0 prints the report', () => {
    // The launcher's variables as Open MPI sets them; the doctor itself loads no MPI.
    const job = { OMPI_COMM_WORLD_SIZE: '2', NVIDIA_VISIBLE_DEVICES: '1' };
    const second = hvp(['doctor'], { ...job, OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_LOCAL_RANK: '1' });
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/^rank 1 of 2 \(local rank 1, host [^)]+\) opened: .*llvmpipe.*; NVIDIA_VISIBLE_DEVICES=1\n$/);
    const first = hvp(['doctor'], { ...job, OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_LOCAL_RANK: '0' });
    expect(first.stdout).toMatch(/^rank 0 of 2 \(local rank 0, host [^)]+\) opened: .*llvmpipe.*\nAdapters Dawn sees:/);
    // A single process prints no rank line.
    expect(hvp(['doctor']).stdout).toMatch(/^Adapters Dawn sees:/);
  });

  it('--device gpu refuses the software adapter with the diagnosis, exit 1; HVP_DEVICE=gpu too', () => {
    for (const r of [hvp(['info', '--device', 'gpu']), hvp(['info'], { HVP_DEVICE: 'gpu' })]) {
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^hvp: --device gpu: the only adapter offered is a software one \(.*llvmpipe.*\), which runs on the CPU\.$/m);
      expect(r.stderr).toMatch(/No GPU on this host/);
      expect(r.stderr).toMatch(/`hvp doctor` lists every adapter Dawn sees/);
    }
    // --device cpu (and auto) take it.
    expect(hvp(['info', '--device', 'cpu']).stdout).toMatch(/^adapter: .*llvmpipe/m);
  });

  it('--adapter picks by name and names the adapters when none matches', () => {
    expect(hvp(['info', '--adapter', 'llvmpipe']).stdout).toMatch(/^adapter: .*llvmpipe/m);
    const r = hvp(['info', '--adapter', 'nomatch']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hvp: --adapter 'nomatch': no adapter's name contains it/m);
    expect(r.stderr).toMatch(/backend: 'vulkan', name: 'llvmpipe/);
  });

  it('--kernels picks the kernel family that hvp info reports; bad values are errors', () => {
    const kernels = (args: string[]) => /^kernels: +(.*)$/m.exec(hvp(['info', ...args]).stdout)?.[1];
    expect(kernels([])).toBe('CPU-adapter variants');
    expect(kernels(['--kernels', 'gpu'])).toBe('GPU variants');
    expect(kernels(['--kernels=cpu'])).toBe('CPU-adapter variants');
    const bad = hvp(['--kernels', 'fast', 'info']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe("hvp: --kernels must be one of auto, gpu, cpu, got 'fast'\n");
    expect(hvp(['--help']).stdout).toMatch(/^ {2}--device auto\|gpu\|cpu {3}gpu: refuse a software adapter/m);
    expect(hvp(['--device', 'gpu', 'smoke', '--help']).stdout).toMatch(/--seed N[\s\S]*\nAlso --device auto\|gpu\|cpu, --adapter NAME, --kernels auto\|gpu\|cpu/);
  });

  it("keeps Dawn's clamp notices off stderr, while the Vulkan loader's own warnings still come through", () => {
    const r = hvp(['info']);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(NOTICE);
    // A driver file that does not exist: the loader complains during adapter discovery, inside the filtered call.
    const missing = join(tmpdir(), 'no-such-icd.json');
    const w = hvp(['info'], { VK_ADD_DRIVER_FILES: missing });
    expect(w.status).toBe(0);
    expect(w.stderr).toContain(`Failed to open JSON file ${missing}`);
    expect(w.stderr).not.toMatch(NOTICE);
  });
});

describe("the engine's own errors still reach the user", () => {
  it('a WGSL compile error rejects the next read, naming the kernel and the shader error', async () => {
    const e = await Engine.create();
    const broken = defineKernel({
      name: 'test_broken_wgsl',
      source: '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }',
      workgroupSize: 1,
      uniforms: {},
      inputs: {},
      outputs: { out: 'f32' },
    });
    const out = e.zeros([1]);
    broken.launch({ inputs: [], outputs: [out], uniforms: {}, workgroups: [1] });
    await expect(out.toArray()).rejects.toThrow(/undefined_name[\s\S]*test_broken_wgsl/);
    e.destroy();
  });
});
