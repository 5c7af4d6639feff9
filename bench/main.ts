// `npm run bench` / `hvp bench`: kernel throughput against a peer on the same adapter.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/index.js';
import type { BenchCase, BenchContext, BenchRecord } from './case.js';
import { createTfjsPeer } from './peers/tfjs.js';
import { matmulCases } from './cases/matmul.js';
import { convCases } from './cases/conv.js';
import { modelCases } from './cases/models.js';

const ALL: BenchCase[] = [...matmulCases, ...convCases, ...modelCases];

const HELP = `Usage: hvp bench [options]

Times our WGSL kernels and the same work in @tensorflow/tfjs-backend-webgpu on the same WebGPU
adapter (submit, await onSubmittedWorkDone, median of --reps runs after --warmup runs).

Options:
  --quick          run the quick subset
  --filter TEXT    only cases whose name contains TEXT
  --json FILE      also write the records as JSON
  --reps N         timed repetitions per case (default 5)
  --warmup N       untimed runs before timing (default 2)
  --no-peer        skip the tfjs peer
  -h, --help       show this help`;

export async function benchMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      filter: { type: 'string' },
      json: { type: 'string' },
      reps: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      'no-peer': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const reps = Number(values.reps);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got ${values.reps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be a non-negative integer, got ${values.warmup}`);

  const engine = await Engine.create();
  const tfjs = values['no-peer'] ? null : await createTfjsPeer(engine.backend.gpu);
  const ctx: BenchContext = { engine, tfjs, time: { reps, warmup } };
  const cases = ALL.filter((c) => (!values.quick || c.quick) && (!values.filter || c.name.includes(values.filter)));
  console.log(`adapter: ${engine.description}`);
  const records: BenchRecord[] = [];
  for (const c of cases) {
    const ours = await c.ours(c.reps ? { ...ctx, time: { ...ctx.time, ...c.reps } } : ctx);
    const peer = c.peer && tfjs ? await c.peer.run(ctx) : null;
    const rec: BenchRecord = {
      name: c.name,
      shape: c.shape,
      ours_ms: round(ours.medianMs),
      peer: peer ? c.peer!.name : null,
      peer_ms: peer ? round(peer.medianMs) : null,
      ratio: peer ? round(peer.medianMs / ours.medianMs) : null,
    };
    if (c.flops) rec.gflops = round(c.flops / ours.medianMs / 1e6);
    if (c.bytes) rec.gbps = round(c.bytes / ours.medianMs / 1e6);
    if (c.images) rec.images_per_s = round((c.images * 1000) / ours.medianMs);
    if (ours.peakBytes !== undefined) rec.peak_mib = round(ours.peakBytes / 2 ** 20);
    records.push(rec);
    printRow(rec);
  }
  if (values.json) {
    writeFileSync(values.json, JSON.stringify({ adapter: engine.description, records }, null, 2) + '\n');
    console.log(`wrote ${values.json}`);
  }
  engine.destroy();
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function printRow(r: BenchRecord): void {
  const thr =
    r.gflops !== undefined
      ? `${r.gflops.toFixed(2)} GFLOP/s`
      : r.gbps !== undefined
        ? `${r.gbps.toFixed(2)} GB/s`
        : r.images_per_s !== undefined
          ? `${r.images_per_s.toFixed(1)} img/s, peak ${r.peak_mib?.toFixed(0)} MiB`
          : '';
  const peer = r.peer ? `${r.peer} ${r.peer_ms!.toFixed(2)} ms  ratio ${r.ratio!.toFixed(2)}x` : '';
  console.log(`${r.name.padEnd(22)} ${r.shape.padEnd(34)} ours ${r.ours_ms.toFixed(2).padStart(9)} ms  ${thr.padEnd(16)} ${peer}`);
}
