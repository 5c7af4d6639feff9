// The run's log: one JSON object per line (log.jsonl), so a crashed or resumed run keeps every line
// it wrote and analyses can stream it. A step record holds the loss, learning rate, throughput, each
// sample's dataset index, selected combination (as candidate view indices) and score, every candidate
// view's augmentation parameters (with the index, enough to render any view again exactly), every
// combination's score for the first --log-samples samples, and the step's phase times: what the paper
// analyses (crop IoU, jitter strength of hard views) and what `hvp report` draws.

import { createWriteStream, type WriteStream } from 'node:fs';
import type { StepResult, StepTimes } from './hvp-step.js';

const round6 = (s: number) => Number(s.toPrecision(6));

/** A logged step's GPU values, read back. */
export interface LoggedValues {
  choice: Int32Array;
  score: Float32Array | null;
  sampleScores: Float32Array | null;
}

export class JsonLog {
  private readonly stream: WriteStream;

  constructor(readonly path: string, append: boolean) {
    this.stream = createWriteStream(path, { flags: append ? 'a' : 'w' });
  }

  write(record: Record<string, unknown>): void {
    this.stream.write(JSON.stringify(record) + '\n');
  }

  /**
   * The step's record from values already read back (`read`: the choice, scores and per-sample scores
   * of `r`, read with the loss in one readback); `scoreSum`: the step's sum over every scored
   * combination's score (its mean is logged, for the hardness gap).
   */
  step(step: number, loss: number, r: StepResult, read: LoggedValues, imagesPerSecond: number, times?: StepTimes, scoreSum?: number): void {
    const choice = read.choice;
    const score = read.score ? Array.from(read.score, round6) : null;
    let sampleScores: number[][] | null = null;
    if (read.sampleScores && r.sampleScores) {
      const [k, n] = r.sampleScores.shape;
      const flat = read.sampleScores;
      sampleScores = Array.from({ length: k }, (_, i) => Array.from(flat.subarray(i * n, (i + 1) * n), round6));
    }
    this.write({
      step,
      loss,
      lr: r.lr,
      images_per_s: Number(imagesPerSecond.toFixed(2)),
      selected: Array.from(choice, (c) => r.rows[c]),
      score,
      ...(r.scoreSum && scoreSum !== undefined ? { score_all_mean: round6(scoreSum / (choice.length * r.rows.length)) } : {}),
      indices: Array.from(r.indices),
      rows: r.rows,
      candidate_scores: sampleScores,
      views: r.params,
      ...(times ? { times_ms: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Number(v.toFixed(3))])) } : {}),
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
