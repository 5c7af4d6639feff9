// Progress with ETA on long work: a redrawn line on a terminal, plain lines otherwise (logs, CI).

export class Progress {
  private readonly start = performance.now();
  private lastPlain = 0;
  private readonly tty = !!process.stderr.isTTY;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'step',
  ) {}

  update(done: number, info = ''): void {
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = done > 0 ? (this.total - done) / rate : NaN;
    const pct = ((100 * done) / this.total).toFixed(0).padStart(3);
    const line = `${this.label} ${pct}% ${done}/${this.total} ${this.unit}s  ${rate.toFixed(1)} ${this.unit}/s  elapsed ${clock(elapsed)}  eta ${clock(eta)}  ${info}`;
    if (this.tty) {
      const width = process.stderr.columns ?? 120;
      const bar = Math.max(10, Math.min(30, width - line.length - 4));
      const filled = Math.round((bar * done) / this.total);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(bar - filled)}] ${line}`.slice(0, width - 1) + '\x1b[K');
    } else if (elapsed - this.lastPlain >= 5 || done === this.total) {
      this.lastPlain = elapsed;
      process.stderr.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

function clock(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const ss = String(Math.floor(s % 60)).padStart(2, '0');
  return h > 0 ? `${h}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
