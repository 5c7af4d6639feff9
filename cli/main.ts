// The `hvp` command line: one entry, a subcommand per job, `--help` on each.

import { parseArgs } from 'node:util';
import { DEVICE_SETTINGS_HELP, Engine, setDeviceDefaults, takeDeviceSettings } from '../engine/index.js';
import { doctorMain } from './doctor.js';
import { smoke } from './smoke.js';
import { embedMain } from './embed.js';
import { demoMain } from './demo.js';
import { pretrainMain } from './pretrain.js';
import { evalMain } from './eval.js';
import { scoreMain } from './score.js';
import { reportMain } from './report.js';
import { serveMain } from './serve.js';

const HELP = `Usage: hvp <command> [options]

Commands:
  demo      pretrain on Fashion-MNIST with HVP and with random views (SimCLR; --seeds K), compare k-NN accuracy
  pretrain  self-supervised pretraining (SimSiam, SimCLR, DINO, iBOT) with or without hard views
  eval      k-NN or linear-probe top-1 of a pretrained backbone on a dataset
  report    one HTML page about runs: curves, hard-pair gallery, pair statistics, cost
  serve     the HVP explorer page on localhost: views, pair scores and live training in the browser (WebGPU)
  score     score view combinations of embeddings in a file and select the hardest per sample
  smoke     train a small MLP on synthetic data and print its loss (checks the whole engine)
  embed     features of a frozen backbone (ResNet / ViT weights in safetensors) for a batch of images
  bench     kernel throughput against tfjs-webgpu on the same adapter
  profile   time every kernel dispatch of a training step (or bench case); table and Chrome trace
  info      print the WebGPU adapter, its features and limits
  doctor    list every adapter Dawn sees; if a GPU is present but unused, what is missing and the fix

Run 'hvp <command> --help' for the options of a command.

${DEVICE_SETTINGS_HELP}`;

const SMOKE_HELP = `Usage: hvp smoke [options]

Trains a 3-layer MLP on a synthetic two-spirals set with AdamW and a cosine schedule, printing the
loss every 20 steps and the final training accuracy.

Options:
  --steps N    training steps (default 300)
  --hidden N   hidden width (default 64)
  --batch N    points in the data set, one full batch (default 512)
  --lr X       peak learning rate (default 0.01)
  --seed N     random seed (default 0)`;

function int(name: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

async function runSmoke(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '300' },
      hidden: { type: 'string', default: '64' },
      batch: { type: 'string', default: '512' },
      lr: { type: 'string', default: '0.01' },
      seed: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return console.log(SMOKE_HELP);
  const lr = Number(values.lr);
  if (!(lr > 0)) throw new Error(`--lr must be a positive number, got '${values.lr}'`);
  await smoke({
    steps: int('steps', values.steps),
    hidden: int('hidden', values.hidden),
    batch: int('batch', values.batch, 2),
    lr,
    seed: int('seed', values.seed, 0),
  });
}

async function runInfo(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return console.log('Usage: hvp info\n\nPrints the WebGPU adapter, its features and limits.');
  const engine = await Engine.create();
  const rt = engine.backend;
  console.log(`adapter:  ${rt.description}`);
  console.log(`kernels:  ${rt.isCpuAdapter ? 'CPU-adapter variants' : 'GPU variants'}`);
  console.log(`features: ${[...rt.adapter.features].sort().join(', ')}`);
  const lim = rt.limits as unknown as Record<string, number>;
  for (const key of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupsPerDimension']) {
    console.log(`${key}: ${lim[key]}`);
  }
  engine.destroy();
}

/** Commands that open the GPU, whose help ends with a pointer to the device options. */
const GPU_COMMANDS = new Set(['demo', 'pretrain', 'eval', 'report', 'score', 'smoke', 'embed', 'bench', 'profile', 'info']);
const DEVICE_OPTIONS_LINE = '\nAlso --device auto|gpu|cpu, --adapter NAME, --kernels auto|gpu|cpu (or HVP_*): see `hvp --help`.';

async function main(args: string[]): Promise<void> {
  // The device settings apply to whichever command opens the GPU, so they are taken out first.
  const { rest: argv, settings } = takeDeviceSettings(args, process.env);
  setDeviceDefaults(settings);
  await run(argv);
  const [cmd, ...rest] = argv;
  if (GPU_COMMANDS.has(cmd) && (rest.includes('--help') || rest.includes('-h'))) console.log(DEVICE_OPTIONS_LINE);
}

async function run(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'demo':
      return demoMain(rest);
    case 'pretrain':
      return pretrainMain(rest);
    case 'eval':
      await evalMain(rest);
      return;
    case 'report':
      return reportMain(rest);
    case 'score':
      return scoreMain(rest);
    case 'serve':
      return serveMain(rest);
    case 'smoke':
      return runSmoke(rest);
    case 'embed':
      return embedMain(rest);
    case 'bench':
      // Loaded on demand: the bench pulls in its peer (tfjs) and every case, which no other command needs.
      return (await import('../bench/main.js')).benchMain(rest);
    case 'profile':
      // The profiler's workloads come from the bench, loaded on demand like it.
      return (await import('../bench/profile.js')).profileMain(rest);
    case 'info':
      return runInfo(rest);
    case 'doctor':
      return doctorMain(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      return console.log(HELP);
    default:
      throw new Error(`unknown command '${cmd}'\n\n${HELP}`);
  }
}

main(process.argv.slice(2)).then(
  // A command may set process.exitCode (a run stopped by a signal exits 130 or 143).
  () => process.exit(),
  (e: unknown) => {
    console.error(`hvp: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
