// The run's log: one JSON object per line (log.jsonl), so a crashed or resumed run keeps every line
// it wrote and analyses can stream it. A step record holds the loss, learning rate, throughput, each
// sample's dataset index, selected combination (as candidate view indices) and score, every candidate
// view's augmentation parameters (with the index, enough to render any view again exactly), every
// combination's score for the first --log-samples samples, and the step's phase times: what the paper
// analyses (crop IoU, jitter strength of hard views) and what `hvp report` draws.

import { createWriteStream, type WriteStream } from 'node:fs';
import type { Method } from '../methods/method.js';
import type { StepResult, StepTimes } from './hvp-step.js';

const round6 = (s: number) => Number(s.toPrecision(6));

export class JsonLog {
  private readonly stream: WriteStream;

  constructor(readonly path: string, append: boolean) {
    this.stream = createWriteStream(path, { flags: append ? 'a' : 'w' });
  }

  write(record: Record<string, unknown>): void {
    this.stream.write(JSON.stringify(record) + '\n');
  }

  /** `scoreSum`: the step's sum over every scored combination's score (its mean is logged, for the hardness gap). */
  async step(step: number, loss: number, method: Method, r: StepResult, imagesPerSecond: number, times?: StepTimes, scoreSum?: number): Promise<void> {
    const choice = (await r.choice.toArray()) as Int32Array;
    const score = r.score ? Array.from((await r.score.toArray()) as Float32Array, round6) : null;
    let sampleScores: number[][] | null = null;
    if (r.sampleScores) {
      const [k, n] = r.sampleScores.shape;
      const flat = (await r.sampleScores.toArray()) as Float32Array;
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
