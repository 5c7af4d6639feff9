// Runs a scheduler can stop. Slurm and Kubernetes send SIGTERM before they kill a job, Ctrl-C sends
// SIGINT: either one asks the loop to stop at the next step boundary, write the checkpoint of the
// step reached (atomically, as every checkpoint) and exit with 128 + the signal's number (130, 143),
// so that `hvp pretrain ... && hvp eval ...` does not go on with a half-trained model.
//
// The loop polls `StopRequest.signal` once per step, so a stop never cuts a step in half. A second
// signal while the checkpoint is written changes nothing: the handler stays installed (the CLI keeps
// it until the process exits), and the checkpoint is a temporary file renamed over the old one, so
// even a SIGKILL leaves either the previous checkpoint or the new one. A data-parallel run combines the ranks'
// requests at the same boundary (any rank's signal stops every rank) before acting on them.

/** The signals that stop a run at the next step boundary with a checkpoint. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** SIGINT (Ctrl-C) or SIGTERM (a scheduler's stop). */
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The exit status of a run stopped by `signal`: 128 + its number, as a shell reports a process killed by it. */
export function signalExitCode(signal: StopSignal): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/** SIGINT and SIGTERM caught from `listen()` until `close()`; the first one received is the one reported. */
export class StopRequest {
  private received: StopSignal | null = null;
  private readonly handlers = new Map<StopSignal, () => void>();

  /** The signal that asked the run to stop (null while none did). */
  get signal(): StopSignal | null {
    return this.received;
  }

  /**
   * What the loop acts on at each step boundary: the signal received, if any. Every rank of a
   * data-parallel run calls it at the same step, so a subclass can combine the ranks' requests there
   * (an all-reduce of one number) and stop them all at that step.
   */
  async atStepBoundary(): Promise<StopSignal | null> {
    return this.received;
  }

  /** Ask the run to stop as `signal` would (a rank told by another rank to stop, or a test). */
  request(signal: StopSignal): void {
    this.received ??= signal;
  }

  /** Catch SIGINT and SIGTERM from now on (they no longer end the process at once). */
  listen(): this {
    for (const s of STOP_SIGNALS) {
      const h = () => this.request(s);
      this.handlers.set(s, h);
      process.on(s, h);
    }
    return this;
  }

  /** Give the signals back to their previous handling. */
  close(): void {
    for (const [s, h] of this.handlers) process.off(s, h);
    this.handlers.clear();
  }
}

/** The line a stopped run prints: which signal, the step reached, the checkpoint and how to go on. */
export function stoppedMessage(signal: StopSignal, step: number, checkpoint: string, out: string): string {
  return `stopped by ${signal} at step ${step}; checkpoint ${checkpoint}; continue with: hvp pretrain --out ${out} --resume`;
}
