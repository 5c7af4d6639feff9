// Entry of dist/selfcheck.js: `node dist/selfcheck.js [--fixtures DIR] [--kernels gpu|cpu|auto] [--json FILE]`.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Engine } from '../../engine/index.js';
import { resultLine, runSelfCheck } from './index.js';

const HELP = `Usage: node dist/selfcheck.js [options]

Checks every kernel family on small shapes against float64 references (forward, and backward against
finite differences), and ResNet-18 and ViT-tiny forward and backward against the PyTorch fixtures.
Prints one line per check and exits 1 if any fails.

Options:
  --fixtures DIR   the PyTorch fixtures (test/fixtures of a checkout); without it the model rows are skipped
  --kernels K      kernel variants: gpu (default, what a GPU runs), cpu or auto
  --filter TEXT    only checks whose name contains TEXT
  --json FILE      also write the results as JSON
  -h, --help       show this help`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      fixtures: { type: 'string' },
      kernels: { type: 'string', default: 'gpu' },
      filter: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const kernels = values.kernels;
  if (kernels !== 'gpu' && kernels !== 'cpu' && kernels !== 'auto') throw new Error(`--kernels must be gpu, cpu or auto, got '${kernels}'`);
  const engine = await Engine.create({ kernels });
  console.log(`self-check on ${engine.description}, ${kernels} kernel variants${values.fixtures ? '' : ' (no --fixtures: model rows skipped)'}`);
  const t0 = performance.now();
  const results = await runSelfCheck(engine, { fixtures: values.fixtures, filter: values.filter, onResult: (r) => console.log(resultLine(r)) });
  const failed = results.filter((r) => !r.pass);
  const seconds = (performance.now() - t0) / 1000;
  console.log(`self-check: ${results.length - failed.length} of ${results.length} passed in ${seconds.toFixed(1)} s${failed.length ? `; failed: ${failed.map((r) => r.name).join(', ')}` : ''}`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: engine.description, kernels, seconds, passed: failed.length === 0, results }, null, 2) + '\n');
  engine.destroy();
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`selfcheck: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
