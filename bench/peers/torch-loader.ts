// The loader case's peer: torchvision's DataLoader (ImageFolder + Resize + PILToTensor, worker
// processes) on the same image folder, run by torch_loader.py beside this file. Optional, as the
// PyTorch step peer: where no python3 imports torchvision, detection returns the reason.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Timing } from '../timing.js';
import { PYTHONS, lastLine, runPython } from './torch.js';

export const TORCHVISION = 'torchvision';

export interface LoaderPeerSpec {
  root: string;
  batch: number;
  /** Resize's shorter side. */
  size: number;
  /** DataLoader's num_workers. */
  workers: number;
  warmup: number;
  reps: number;
}

export interface LoaderPeer {
  python: string;
  version: string;
  /**
   * Wall time of `spec.reps` epochs after `spec.warmup` untimed ones (which also start the workers),
   * and where /proc exists the figures `cpu_ms_per_image`: CPU time of the timed epochs, main and
   * worker processes together, per image, and `cpu_cores`: that CPU time over the epochs' wall time.
   */
  epochs(spec: LoaderPeerSpec): Promise<Timing & { figures?: Record<string, number> }>;
}

/** torch_loader.py: beside this file in the sources, under bench/peers/ from the bundle in dist/. */
export function loaderScript(): string | null {
  const candidates = ['./torch_loader.py', '../bench/peers/torch_loader.py'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** The script's JSON line, or null when it died before printing one (stderr then says why). */
function parseLast(stdout: string): { runs_ms?: number[]; cpu_ms?: number | null; images?: number; error?: string } | null {
  try {
    return JSON.parse(lastLine(stdout)) as { runs_ms?: number[]; cpu_ms?: number | null; images?: number; error?: string };
  } catch {
    return null;
  }
}

/** The first interpreter that imports torchvision, as a peer; otherwise why none could. */
export async function createLoaderPeer(opts: { pythons?: string[]; timeoutMs?: number; epochTimeoutMs?: number } = {}): Promise<LoaderPeer | { reason: string }> {
  const script = loaderScript();
  if (!script) return { reason: 'bench/peers/torch_loader.py is not beside the bench' };
  const failures: string[] = [];
  for (const python of opts.pythons ?? PYTHONS) {
    const r = await runPython(python, ['-c', 'import PIL, torch, torchvision; print(torchvision.__version__)'], opts.timeoutMs ?? 30_000);
    if (r.code !== 0) {
      failures.push(`${python}: ${r.error ?? (lastLine(r.stderr) || `exit ${r.code}`)}`);
      continue;
    }
    const version = r.stdout.trim();
    return {
      python,
      version,
      epochs: async (spec) => {
        const out = await runPython(python, [script, JSON.stringify(spec)], opts.epochTimeoutMs ?? 1_800_000);
        const parsed = parseLast(out.stdout);
        if (out.code !== 0 || !parsed?.runs_ms) {
          throw new Error(`torch_loader.py: ${parsed?.error ?? out.error ?? (lastLine(out.stderr) || `exit ${out.code}`)}`);
        }
        const runs = parsed.runs_ms;
        const sorted = [...runs].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)];
        const cpuMs = parsed.cpu_ms;
        const cpu =
          typeof cpuMs === 'number' && parsed.images
            ? { figures: { cpu_ms_per_image: cpuMs / (parsed.images * runs.length), cpu_cores: cpuMs / runs.reduce((a, b) => a + b, 0) } }
            : {};
        return { medianMs: median, minMs: sorted[0], runsMs: runs, method: 'wall', wallMedianMs: median, ...cpu };
      },
    };
  }
  return { reason: `no python3 with torchvision (${failures.join('; ')}); apt-get install python3-torchvision` };
}
