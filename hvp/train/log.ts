// The run's log: one JSON object per line (log.jsonl), so a crashed or resumed run keeps every line
// it wrote and analyses can stream it. A step record holds the loss, learning rate, throughput, each
// sample's selected combination (as candidate view indices) and score, and every candidate view's
// augmentation parameters: what the paper analyses (crop IoU, jitter strength of hard views).

import { createWriteStream, type WriteStream } from 'node:fs';
import type { Method } from '../methods/method.js';
import type { StepResult } from './hvp-step.js';

export class JsonLog {
  private readonly stream: WriteStream;

  constructor(readonly path: string, append: boolean) {
    this.stream = createWriteStream(path, { flags: append ? 'a' : 'w' });
  }

  write(record: Record<string, unknown>): void {
    this.stream.write(JSON.stringify(record) + '\n');
  }

  async step(step: number, loss: number, method: Method, r: StepResult, imagesPerSecond: number): Promise<void> {
    const choice = (await r.choice.toArray()) as Int32Array;
    const score = r.score ? Array.from((await r.score.toArray()) as Float32Array, (s) => Number(s.toPrecision(6))) : null;
    this.write({
      step,
      loss,
      lr: r.lr,
      images_per_s: Number(imagesPerSecond.toFixed(2)),
      selected: Array.from(choice, (c) => r.rows[c]),
      score,
      views: r.params,
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
