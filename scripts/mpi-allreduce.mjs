// All-reduce time for the gradient sizes of ResNet-50 and ViT-S/16, for the README's scale section:
//   mpirun -np N node scripts/mpi-allreduce.mjs [--repeats R]
// Sums a Float32Array of each model's parameter count over the ranks, whole and in 25 MB buckets (as
// data-parallel training does), R times after one warm-up, and prints rank 0's median and range in ms
// and the bus bandwidth 2(N-1)/N × bytes / time (the ring all-reduce's bytes sent per rank).

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const mpi = require(fileURLToPath(new URL('../build/mpi.node', import.meta.url)));
const repeatsAt = process.argv.indexOf('--repeats');
const repeats = repeatsAt > 0 ? Number(process.argv[repeatsAt + 1]) : 10;

const MODELS = [
  ['ResNet-50', 25_557_032],
  ['ViT-S/16', 21_665_664],
];
const BUCKET = (25 * 1024 * 1024) / 4;

mpi.init();
const rank = mpi.rank();
const world = mpi.size();

function time(fn) {
  mpi.barrier();
  const t0 = performance.now();
  fn();
  mpi.barrier();
  return performance.now() - t0;
}

const rows = [];
for (const [name, params] of MODELS) {
  const grads = new Float32Array(params).fill(rank + 1);
  for (const [how, reduce] of [
    ['whole', () => mpi.allreduceSum(grads)],
    ['25 MB buckets', () => {
      for (let at = 0; at < grads.length; at += BUCKET) mpi.allreduceSum(grads.subarray(at, Math.min(grads.length, at + BUCKET)));
    }],
  ]) {
    time(reduce);
    const ms = Array.from({ length: repeats }, () => time(reduce)).sort((a, b) => a - b);
    const median = ms[Math.floor(ms.length / 2)];
    const bytes = params * 4;
    const busGBs = ((2 * (world - 1)) / world) * bytes / (median / 1000) / 1e9;
    rows.push(`${name.padEnd(10)} ${(bytes / 1e6).toFixed(1).padStart(6)} MB  ${how.padEnd(14)} median ${median.toFixed(1).padStart(7)} ms  (${ms[0].toFixed(1)}-${ms[ms.length - 1].toFixed(1)})  bus ${busGBs.toFixed(2)} GB/s`);
  }
}
if (rank === 0) console.log(`${world} ranks, ${repeats} repeats\n${rows.join('\n')}`);
mpi.finalize();
