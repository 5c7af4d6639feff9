// The CPU peer: PyTorch on this machine's processor, for whole training steps (bench/cases/hvp-step.ts).
// Optional: where no python3 can import torch (Debian: `apt-get install python3-torch`), detection
// returns the reason and the bench goes on without it. The work itself is torch_step.py beside this
// file, run once per case with a JSON spec; it prints its timings as JSON.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Prefix of the record fields this peer fills (`torch_ms`, `torch_ratio`, ...). */
export const TORCH = 'torch';

/**
 * Interpreters tried in turn: the one on PATH, then Debian's, which python3-torch installs into and
 * which a python3 of pyenv or a virtual environment earlier on PATH would hide.
 */
export const PYTHONS = ['python3', '/usr/bin/python3'];

/** What bench/cases/hvp-step.ts asks torch_step.py to time (the script's JSON spec, in camelCase). */
export interface TorchStepSpec {
  /** The ResNet (default resnet18). */
  arch?: 'resnet18' | 'resnet50';
  /** The small-image stem (3×3 stride 1, no max-pool; the default) or torchvision's standard one. */
  smallImage?: boolean;
  /** Stage widths of the ResNet. */
  widths: number[];
  channels: number;
  size: number;
  batch: number;
  views: number;
  /** 'random': train on views 0 and 1 (views = 2); 'hvp': selection forward, scores, argmax, gather, train. */
  mode: 'random' | 'hvp';
  /** Render the selection views at this size (0: the training views themselves). */
  selectRes: number;
  dim: number;
  predDim: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  zeroInitResidual: boolean;
  warmup: number;
  reps: number;
  /** Our network's parameter count: the script refuses to time a network of another size. */
  expectParams: number;
  /** Where the script runs the step (default the peer's device). */
  device?: TorchDevice;
  /** CUDA only: the step under torch.autocast in this dtype ('' or absent: fp32 throughout). */
  amp?: '' | 'bf16' | 'fp16';
}

export type TorchDevice = 'cpu' | 'cuda';

export interface TorchStepTiming {
  medianMs: number;
  minMs: number;
  runsMs: number[];
  /** Median of each step's view generation (drawing parameters and rendering), part of medianMs. */
  viewsMedianMs: number;
  params: number;
  threads: number;
  version: string;
  /** Absent: cpu. */
  device?: TorchDevice;
}

/** A peer's timing, or why there is none for this case. */
export type TorchOutcome = TorchStepTiming | { skipped: string };

export interface TorchPeer {
  python: string;
  version: string;
  /** torch's intra-op threads in the script: os.cpu_count(). */
  threads: number;
  device: TorchDevice;
  /** The CUDA device's name (torch.cuda.get_device_name), or 'cpu'. */
  deviceName: string;
  step(spec: TorchStepSpec): Promise<TorchStepTiming>;
  /** Parameters of the PyTorch network of `spec`, without timing anything. */
  params(spec: TorchStepSpec): Promise<number>;
}

export interface TorchPeerOptions {
  /** Interpreters to try, in order (default PYTHONS). */
  pythons?: string[];
  /** For detection (importing torch takes seconds on a loaded machine). */
  timeoutMs?: number;
  /** For one case's steps. */
  stepTimeoutMs?: number;
  /** cpu (default), or cuda: then an interpreter counts only where torch.cuda.is_available(). */
  device?: TorchDevice;
}

export interface Run {
  code: number | string | null;
  stdout: string;
  stderr: string;
  error?: string;
}

export function runPython(python: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(python, args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string };
      const error = e.code === 'ENOENT' ? 'not found' : e.killed ? `timed out after ${timeoutMs / 1000} s` : undefined;
      resolve({ code: e.code ?? e.signal ?? null, stdout, stderr, error });
    });
  });
}

export const lastLine = (s: string) => s.trim().split('\n').pop() ?? '';

/** torch_step.py: beside this file in the sources, under bench/peers/ from the bundle in dist/. */
export function stepScript(): string | null {
  const candidates = ['./torch_step.py', '../bench/peers/torch_step.py'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** The first interpreter that imports torch, as a peer; otherwise why none could, one clause per interpreter. */
export async function createTorchPeer(opts: TorchPeerOptions = {}): Promise<TorchPeer | { reason: string }> {
  const script = stepScript();
  if (!script) return { reason: 'bench/peers/torch_step.py is not beside the bench' };
  const failures: string[] = [];
  const device = opts.device ?? 'cpu';
  // On CUDA the probe prints the device's name, and fails where torch has no CUDA device.
  const probe =
    device === 'cuda'
      ? "import os, torch; assert torch.cuda.is_available(), f'torch {torch.__version__} sees no CUDA device'; print(torch.__version__, os.cpu_count(), torch.cuda.get_device_name(0))"
      : 'import os, torch; print(torch.__version__, os.cpu_count(), "cpu")';
  for (const python of opts.pythons ?? PYTHONS) {
    const r = await runPython(python, ['-c', probe], opts.timeoutMs ?? 60_000);
    if (r.code !== 0) {
      failures.push(`${python}: ${r.error ?? (lastLine(r.stderr) || `exit ${r.code}`)}`);
      continue;
    }
    const [version, cores, ...name] = r.stdout.trim().split(/\s+/);
    const timeout = opts.stepTimeoutMs ?? 1_800_000;
    return {
      python,
      version,
      threads: Number(cores),
      device,
      deviceName: name.join(' '),
      step: async (spec) => {
        const out = await runScript(python, script, { device, ...spec }, false, timeout);
        return {
          medianMs: out.median_ms as number,
          minMs: out.min_ms as number,
          runsMs: out.runs_ms as number[],
          viewsMedianMs: out.views_median_ms as number,
          params: out.params as number,
          threads: out.threads as number,
          version: out.torch as string,
          device: (out.device as TorchDevice | undefined) ?? 'cpu',
        };
      },
      params: async (spec) => (await runScript(python, script, spec, true, timeout)).params as number,
    };
  }
  const fix = device === 'cuda' ? 'a python3 whose torch is built with CUDA, on a host with an NVIDIA driver' : 'apt-get install python3-torch';
  return { reason: `no python3 with torch${device === 'cuda' ? ' and CUDA' : ''} (${failures.join('; ')}); ${fix}` };
}

/** Run torch_step.py on `spec` and return its JSON output; its error, or a crash, as an Error that names the spec. */
async function runScript(python: string, script: string, spec: TorchStepSpec, countOnly: boolean, timeoutMs: number): Promise<Record<string, unknown>> {
  const json = JSON.stringify({
    arch: spec.arch ?? 'resnet18',
    small_image: spec.smallImage ?? true,
    widths: spec.widths,
    channels: spec.channels,
    size: spec.size,
    batch: spec.batch,
    views: spec.views,
    mode: spec.mode,
    select_res: spec.selectRes,
    dim: spec.dim,
    pred_dim: spec.predDim,
    lr: spec.lr,
    momentum: spec.momentum,
    weight_decay: spec.weightDecay,
    zero_init_residual: spec.zeroInitResidual,
    warmup: spec.warmup,
    reps: spec.reps,
    expect_params: spec.expectParams,
    count_only: countOnly,
    device: spec.device ?? 'cpu',
    amp: spec.amp ?? '',
  });
  const r = await runPython(python, [script, json], timeoutMs);
  let out: Record<string, unknown> | null = null;
  try {
    out = JSON.parse(lastLine(r.stdout)) as Record<string, unknown>;
  } catch {
    // No JSON on stdout: the interpreter died before the script could report; stderr says why, below.
    out = null;
  }
  if (r.code !== 0 || !out || 'error' in out) {
    const why = (out?.error as string | undefined) ?? r.error ?? (lastLine(r.stderr) || `exit ${r.code}`);
    throw new Error(`torch_step.py (${spec.device === 'cuda' ? `cuda${spec.amp ? ` ${spec.amp}` : ''}, ` : ''}${spec.mode}, batch ${spec.batch}, ${spec.channels}x${spec.size}x${spec.size}): ${why}`);
  }
  return out;
}
