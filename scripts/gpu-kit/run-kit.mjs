// The GPU kit's driver, started by run.sh with the kit's own node once the parts are unpacked: prints
// `hvp doctor`, runs the self-check and the bench (with the PyTorch CUDA peer where python3 has torch
// with CUDA) as child processes within the budget, and writes results.json and results.md to --out.
// Plain JavaScript with Node's built-ins alone: it runs before anything else is known to work.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, createWriteStream } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    app: { type: 'string' },
    out: { type: 'string' },
    budget: { type: 'string', default: '480' },
    fixtures: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
if (!values.app || !values.out) throw new Error('run-kit.mjs: --app and --out are required (run.sh passes them)');
const app = resolve(values.app);
const out = resolve(values.out);
const t0 = Date.now();
const deadline = t0 + Number(values.budget) * 1000;
const left = () => Math.max(0, Math.floor((deadline - Date.now()) / 1000));
const log = createWriteStream(join(out, 'log.txt'));
const say = (line) => {
  console.log(line);
  log.write(line + '\n');
};

const results = {
  kit: manifest(),
  host: { hostname: hostname(), kernel: release(), cpus: cpus().length, cpu: cpus()[0]?.model ?? '', memory_gib: Math.round(totalmem() / 2 ** 30), gpus: nvidiaGpus() },
  options: { quick: values.quick, budget_s: Number(values.budget), fixtures: values.fixtures ?? null },
  env: { VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? null, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? null, NVIDIA_DRIVER_CAPABILITIES: process.env.NVIDIA_DRIVER_CAPABILITIES ?? null },
  doctor: null,
  selfcheck: null,
  bench: null,
  torch_peer: null,
  skipped: [],
  phases_s: {},
};

function manifest() {
  const f = new URL('./MANIFEST.json', import.meta.url);
  try {
    const m = JSON.parse(readFileSync(f, 'utf8'));
    return { built: m.built, commit: m.commit, node: process.version, sharp: m.sharp, parts: Object.fromEntries(Object.entries(m.parts).map(([k, p]) => [k, { bytes: p.bytes, what: p.what }])) };
  } catch {
    return { node: process.version };
  }
}

function nvidiaGpus() {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout.trim().split('\n').filter(Boolean) : [];
}

/** Run a child with its output shown and logged; killed at `timeoutS`. Resolves with its exit code and output. */
function runChild(cmd, args, timeoutS) {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let timedOut = false;
    const onData = (d) => {
      const s = d.toString();
      text += s;
      process.stdout.write(s);
      log.write(s);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, Math.max(1, timeoutS) * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ code: null, text: `${text}${e.message}\n`, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? signal, text, timedOut });
    });
  });
}

const node = process.execPath;
const readJson = (f) => (existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null);

async function phase(name, fn) {
  const s = Date.now();
  say(`\n== ${name} (${left()} s of the budget left)`);
  await fn();
  results.phases_s[name] = Math.round((Date.now() - s) / 100) / 10;
}

/** Skip a phase when fewer than `need` seconds are left, saying so in the results. */
function enough(name, need) {
  if (left() >= need) return true;
  const why = `${name}: skipped, ${left()} s of the budget left (needs about ${need} s)`;
  say(why);
  results.skipped.push(why);
  return false;
}

await phase('doctor', async () => {
  const r = await runChild(node, ['dist/hvp.js', 'doctor'], Math.min(90, left()));
  results.doctor = { exit: r.code, output: r.text.trim() };
  if (r.code !== 0) say(`(hvp doctor exited with ${r.code}; the kit goes on)`);
});

await phase('self-check', async () => {
  if (!enough('self-check', 20)) return;
  const fixtures = values.fixtures && existsSync(join(values.fixtures, 'resnet18_small.json')) ? resolve(values.fixtures) : null;
  if (!fixtures) {
    const why = `self-check: no PyTorch fixtures at ${values.fixtures ?? '(none given)'}: the ResNet-18 and ViT-tiny rows are skipped (run the kit from gpu-kit/ inside the checkout, or pass --fixtures)`;
    say(why);
    results.skipped.push(why);
  }
  const json = join(out, 'selfcheck.json');
  const r = await runChild(node, ['dist/selfcheck.js', '--kernels', 'gpu', '--json', json, ...(fixtures ? ['--fixtures', fixtures] : [])], left() - 5);
  const got = readJson(json);
  results.selfcheck = got ? { ...got, exit: r.code } : { passed: false, exit: r.code, timed_out: r.timedOut, results: [], output_tail: r.text.slice(-4000) };
});

/** Whether python3 has torch with CUDA: the peer's device, or why there is none. */
function torchCuda() {
  const probe = "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')";
  const r = spawnSync('python3', ['-c', probe], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { skipped: `python3: ${r.error.message}` };
  if (r.status !== 0) return { skipped: `python3 has no torch (${(r.stderr || '').trim().split('\n').pop()})` };
  const [version, cuda, ...name] = r.stdout.trim().split(/\s+/);
  if (cuda !== 'True') return { skipped: `torch ${version} sees no CUDA device` };
  return { version, device: name.join(' ') };
}

await phase('bench', async () => {
  if (!enough('bench', 30)) return;
  const peer = torchCuda();
  results.torch_peer = peer;
  say(peer.skipped ? `PyTorch CUDA peer skipped: ${peer.skipped}` : `PyTorch CUDA peer: torch ${peer.version} on ${peer.device} (fp32, then autocast bf16; cudnn.benchmark on)`);
  const json = join(out, 'bench.json');
  // The bench starts no case past its budget; the margin leaves the case in flight time to finish.
  const margin = values.quick ? 20 : 60;
  // Quick runs prove that every case runs: one warm-up and two timed repetitions of each kernel case.
  const args = ['dist/bench.js', '--kit', '--json', json, '--budget', String(Math.max(0, left() - margin)), ...(values.quick ? ['--quick', '--reps', '2', '--warmup', '1'] : [])];
  args.push(...(peer.skipped ? ['--no-peer'] : ['--torch-device', 'cuda']));
  const r = await runChild(node, args, left() - 3);
  const got = readJson(json);
  results.bench = { exit: r.code, timed_out: r.timedOut, ...(got ?? { records: [], skipped: [] }) };
  if (r.timedOut) results.skipped.push('bench: stopped at the end of the budget during a case; the cases after it did not run');
  for (const s of got?.skipped ?? []) results.skipped.push(`bench case skipped for the budget: ${s}`);
});

results.elapsed_s = Math.round((Date.now() - t0) / 100) / 10;
results.passed = Boolean(results.selfcheck?.passed) && results.bench?.exit === 0;
writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
writeFileSync(join(out, 'results.md'), markdown(results));
say(`\n== done in ${results.elapsed_s} s: self-check ${results.selfcheck?.passed ? 'passed' : 'FAILED or did not run'}, ${results.bench?.records?.length ?? 0} bench records, ${results.skipped.length} skipped; wrote ${join(out, 'results.json')} and results.md`);
log.end();
process.exitCode = results.selfcheck?.passed ? 0 : 1;

function fmt(x, digits = 1) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function markdown(r) {
  const lines = [];
  lines.push(`# GPU kit results${r.options.quick ? ' (--quick)' : ''}`, '');
  lines.push(`- adapter: ${r.bench?.adapter ?? r.selfcheck?.adapter ?? 'unknown'}`);
  lines.push(`- GPUs (nvidia-smi): ${r.host.gpus.length ? r.host.gpus.join('; ') : 'none found'}`);
  lines.push(`- host: ${r.host.cpus} × ${r.host.cpu}, ${r.host.memory_gib} GiB, Linux ${r.host.kernel}`);
  lines.push(`- kit: commit ${r.kit.commit ?? '?'}, node ${r.kit.node}, built ${r.kit.built ?? '?'}`);
  lines.push(`- budget ${r.options.budget_s} s, used ${r.elapsed_s} s (${Object.entries(r.phases_s).map(([k, v]) => `${k} ${v} s`).join(', ')})`);
  lines.push(`- PyTorch CUDA peer: ${r.torch_peer ? (r.torch_peer.skipped ? `skipped: ${r.torch_peer.skipped}` : `torch ${r.torch_peer.version} on ${r.torch_peer.device}`) : 'not reached'}`);
  lines.push('', '## hvp doctor', '', '```', r.doctor?.output || '(no output)', `(exit ${r.doctor?.exit})`, '```', '');
  const sc = r.selfcheck;
  lines.push(`## Self-check: ${sc ? (sc.passed ? 'passed' : 'FAILED') : 'did not run'}${sc?.kernels ? ` (${sc.kernels} kernel variants)` : ''}`, '');
  if (sc?.results?.length) {
    lines.push('| check | max error | rtol | atol | error / tolerance | result |', '| --- | --- | --- | --- | --- | --- |');
    for (const c of sc.results) lines.push(`| ${c.name} | ${Number.isFinite(c.max_abs) ? c.max_abs.toExponential(2) : c.max_abs} | ${c.rtol} | ${c.atol} | ${fmt(c.worst, 3)} | ${c.pass ? 'pass' : `FAIL${c.problem ? `: ${c.problem}` : ''}`} |`);
  } else if (sc?.output_tail) lines.push('```', sc.output_tail, '```');
  lines.push('');
  const recs = r.bench?.records ?? [];
  lines.push(`## Bench (${recs.length} cases)`, '');
  if (recs.length) {
    lines.push('| case | shape | ours (ms) | throughput | torch fp32 (ms) | torch bf16 (ms) | torch fp32 / ours | peak MiB |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const c of recs) {
      const thr = c.images_per_s !== undefined ? `${fmt(c.images_per_s)} img/s` : c.gflops !== undefined ? `${fmt(c.gflops)} GFLOP/s` : c.gbps !== undefined ? `${fmt(c.gbps)} GB/s` : '';
      const torch = typeof c.torch_ms === 'number' ? fmt(c.torch_ms) : c.torch_skipped ? `skipped: ${c.torch_skipped}` : '–';
      lines.push(`| ${c.name} | ${c.shape} | ${fmt(c.ours_ms, 2)} | ${thr} | ${torch} | ${fmt(c.torch_amp_ms)} | ${typeof c.torch_ratio === 'number' ? `${c.torch_ratio.toFixed(2)}×` : '–'} | ${fmt(c.peak_mib, 0)} |`);
    }
  }
  lines.push('');
  if (r.skipped.length) lines.push('## Skipped', '', ...r.skipped.map((s) => `- ${s}`), '');
  return lines.join('\n') + '\n';
}
