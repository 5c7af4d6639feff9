import { Engine, ops, Rng } from '../engine/index.js';
const e = await Engine.create();
const rng = new Rng(1);
const n = Number(process.argv[2] ?? 1024);
const a = e.randn([n, n], rng), b = e.randn([n, n], rng);
const times: number[] = [];
for (let r = 0; r < 6; r++) {
  await e.sync();
  const t0 = performance.now();
  const c = ops.matmul(a, b);
  e.backend.flush();
  await e.backend.device.queue.onSubmittedWorkDone();
  times.push(performance.now() - t0);
  c.dispose();
}
times.shift(); times.sort((x, y) => x - y);
const ms = times[2];
console.log(`matmul ${n}: ${ms.toFixed(1)} ms, ${(2 * n ** 3 / ms / 1e6).toFixed(2)} GFLOP/s`, times.map(t=>t.toFixed(0)).join(' '));
process.exit(0);
