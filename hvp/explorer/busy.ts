// One explorer action at a time. The engine forbids interleaved scopeAsync calls, and an action
// (score, train, load) awaits the GPU inside one; a second click while it runs would start another.
// The guard disables every control while an action runs and refuses a call that arrives meanwhile.

/** A control the guard disables (an HTMLButtonElement or HTMLInputElement in the page). */
export interface Control {
  disabled: boolean;
}

export class BusyGuard {
  private running: string | null = null;

  /**
   * `controls`: every control that starts an action. `allowed`: whether a control may be enabled
   * when nothing runs (e.g. "train" only for a trainable model), read again after each action.
   */
  constructor(
    private readonly controls: () => Control[],
    private readonly allowed: (c: Control) => boolean = () => true,
  ) {}

  /** The running action's name, or null. */
  get busy(): string | null {
    return this.running;
  }

  /** Run `fn` with every control disabled; throws at once if another action is running. */
  async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.running) throw new Error(`explorer: ${what} must wait: ${this.running} is still running`);
    this.running = what;
    this.refresh();
    try {
      return await fn();
    } finally {
      this.running = null;
      this.refresh();
    }
  }

  /** Set every control's state: all disabled while busy, otherwise as `allowed` says. */
  refresh(): void {
    for (const c of this.controls()) c.disabled = this.running !== null || !this.allowed(c);
  }
}
