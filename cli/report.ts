// `hvp report RUN [RUN...]`: one self-contained HTML page about training runs (curves, final table,
// hard-pair gallery, pair statistics, cost), written to --out.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/index.js';
import { makeReport } from '../hvp/report/index.js';

export const REPORT_HELP = `Usage: hvp report RUN [RUN...] [--out FILE.html]

Writes one HTML file (scripts, styles and images inlined; it opens offline) about the runs: loss,
learning rate, images/s and k-NN top-1 curves with the runs overlaid; the final k-NN table (with raw
pixels and random init when the demo's summary.json is beside the runs); the hard-pair gallery (the
candidate views rendered again from the log with the training renderer, each sample's score matrix,
the chosen pair and the pair random selection would draw); how chosen pairs differ from all
candidates in crop area, IoU, centre distance, flip, jitter, grayscale, blur and solarise, early and
late in training; and the time of each phase of a step.

Options:
  --out FILE    output file (default RUN/report.html for the first run)
  --steps N     logged steps shown in the gallery (default 4)
  --samples N   samples per gallery step (default 2)`;

function posInt(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

/** Write the report of `dirs` to `out`; returns the file's path. */
export async function writeReport(engine: Engine, dirs: readonly string[], out: string, opts: Parameters<typeof makeReport>[2] = {}): Promise<string> {
  const html = await makeReport(engine, dirs, opts);
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeFile(out, html);
  return out;
}

export async function reportMain(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      steps: { type: 'string', default: '4' },
      samples: { type: 'string', default: '2' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return console.log(REPORT_HELP);
  if (!positionals.length) throw new Error(`give at least one run directory\n\n${REPORT_HELP}`);
  const out = values.out ?? `${positionals[0]}/report.html`;
  const engine = await Engine.create();
  try {
    await writeReport(engine, positionals, out, { gallerySteps: posInt('steps', values.steps), gallerySamples: posInt('samples', values.samples) });
  } finally {
    engine.destroy();
  }
  console.log(`wrote ${out}`);
}
