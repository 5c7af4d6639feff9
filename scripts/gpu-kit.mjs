// `npm run gpu-kit`: build gpu-kit/, everything a bare x86-64 Linux GPU host needs to run the self-check
// and the bench with nothing but sh, tar, gzip and python3 there: this machine's node binary, the built
// bundles, Dawn's linux-x64 addon, sharp with its libvips, and the Vulkan loader, each part packed on
// its own (xz through python3's lzma, which the host unpacks with python3 too, since a bare host often
// lacks the xz tool), plus run.sh and run-kit.mjs (what run.sh starts once node is unpacked).
//
// Usage: node scripts/gpu-kit.mjs [--out DIR] [--no-sharp] [--no-build]
// A part whose inputs (paths, sizes, modification times) are those of the part already in DIR is kept
// as it is: compressing node takes minutes, and a rebuild after a code change then redoes the bundles only.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The kit travels beside the repository's tracked files in 64 MiB; this is its share. */
export const KIT_LIMIT_BYTES = 36 * 2 ** 20;

const HELP = `Usage: node scripts/gpu-kit.mjs [options]   (npm run gpu-kit)

Builds a self-contained kit for a bare x86-64 Linux GPU host (sh, tar, gzip and python3 alone):
node, the bundles (dist/hvp.js, dist/bench.js, dist/selfcheck.js), Dawn's dawn.node for linux-x64,
sharp and libvips, and the Vulkan loader, at most 36 MiB. On the host: gpu-kit/run.sh [--quick] OUTDIR.

Options:
  --out DIR    where to build the kit (default gpu-kit/ in the checkout)
  --no-sharp   leave sharp out (folder datasets and the loader bench then cannot run)
  --no-build   use dist/ as it is instead of running scripts/build.mjs first
  -h, --help   show this help`;

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: join(ROOT, 'gpu-kit') },
    'no-sharp': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the kit is for linux-x64 hosts and carries this machine's node: build it on linux-x64, not ${process.platform}-${process.arch}`);

const OUT = resolve(values.out);
mkdirSync(OUT, { recursive: true });
const manifestPath = join(OUT, 'MANIFEST.json');
const previous = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : { parts: {} };
const modules = join(ROOT, 'node_modules');

if (!values['no-build']) execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--no-lib'], { cwd: ROOT, stdio: 'inherit' });
for (const f of ['hvp.js', 'bench.js', 'selfcheck.js']) {
  if (!existsSync(join(ROOT, 'dist', f))) throw new Error(`dist/${f} is missing: run node scripts/build.mjs`);
}

/** Every file under `src` (a file or a folder), following the links npm makes. */
function filesUnder(src) {
  const st = statSync(src);
  if (!st.isDirectory()) return [src];
  return readdirSync(src).flatMap((n) => filesUnder(join(src, n)));
}

/** What a part is made of, for deciding whether the part in OUT is still current. */
function signature(entries) {
  return entries.flatMap(([src]) => filesUnder(src).map((f) => {
    const st = statSync(f);
    return `${f}:${st.size}:${st.mtimeMs}`;
  })).sort().join('\n');
}

/**
 * Pack `entries` ([source, path in the kit]) into OUT/name with python3's tarfile (xz preset 9, or
 * gzip). Asynchronous: lzma compresses on one core, so the parts are packed side by side (node's part
 * alone takes most of the time).
 */
async function packPart(name, entries, what, prepare) {
  const sig = signature(entries);
  const file = join(OUT, name);
  const old = previous.parts?.[name];
  if (old && old.signature === sig && existsSync(file)) {
    console.log(`gpu-kit: ${name} is current (${mib(statSync(file).size)})`);
    return { ...old, bytes: statSync(file).size };
  }
  const stage = mkdtempSync(join(tmpdir(), 'hvp-kit-'));
  try {
    for (const [src, dest] of entries) cpSync(src, join(stage, dest), { recursive: true, dereference: true });
    prepare?.(stage);
    const mode = name.endsWith('.gz') ? 'w:gz' : 'w:xz';
    const level = name.endsWith('.gz') ? 'compresslevel=9' : 'preset=9';
    const t0 = Date.now();
    const py = `import sys, tarfile, os\nwith tarfile.open(sys.argv[1], '${mode}', ${level}) as t:\n  for n in sorted(os.listdir(sys.argv[2])):\n    t.add(os.path.join(sys.argv[2], n), arcname=n)`;
    const status = await new Promise((done, fail) => {
      const child = spawn('python3', ['-c', py, file, stage], { stdio: 'inherit' });
      child.on('error', fail);
      child.on('close', done);
    });
    if (status !== 0) throw new Error(`python3 could not write ${name}`);
    console.log(`gpu-kit: ${name} ${mib(statSync(file).size)} (${what}; ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return { what, signature: sig, bytes: statSync(file).size };
}

const mib = (b) => `${(b / 2 ** 20).toFixed(2)} MiB`;

/** node without its symbols and debug info (86 MB instead of 99; 2 MiB less under xz) where strip exists. */
function stripNode(stage) {
  const node = join(stage, 'bin/node');
  const r = spawnSync('strip', ['--strip-all', node]);
  if (r.status !== 0) console.log('gpu-kit: strip is not available, node goes in with its symbols');
  chmodSync(node, 0o755);
}

/** The Vulkan loader: Debian's libvulkan1 package unpacked (apt-get download), else this system's copy. */
function vulkanLoader() {
  const dir = mkdtempSync(join(tmpdir(), 'hvp-kit-vk-'));
  const got = spawnSync('apt-get', ['download', 'libvulkan1'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (got.status === 0 && deb) {
    execFileSync('dpkg-deb', ['-x', join(dir, deb), join(dir, 'root')]);
    const lib = join(dir, 'root/usr/lib/x86_64-linux-gnu');
    const so = readdirSync(lib).find((f) => /^libvulkan\.so\.1\.\d/.test(f));
    return { dir, file: join(lib, so), copyright: join(dir, 'root/usr/share/doc/libvulkan1/copyright'), source: `Debian package ${deb} (apt-get download libvulkan1, dpkg-deb -x)` };
  }
  const system = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/lib/x86_64-linux-gnu/libvulkan.so.1'].find((p) => existsSync(p));
  if (!system) throw new Error('no Vulkan loader: apt-get download libvulkan1 failed and this system has no libvulkan.so.1 (apt-get install libvulkan1)');
  const real = realpathSync(system);
  return { dir, file: real, copyright: '/usr/share/doc/libvulkan1/copyright', source: `this system's ${real} (apt-get download libvulkan1 failed: ${(got.stderr || '').trim().split('\n').pop()})` };
}

const parts = {};
const packing = {};
packing['node.tar.xz'] = packPart('node.tar.xz', [[process.execPath, 'bin/node']], `node ${process.version} (${process.execPath}), stripped`, stripNode);

const webgpu = join(modules, 'webgpu');
packing['dawn.tar.xz'] = packPart(
  'dawn.tar.xz',
  ['package.json', 'index.js', 'LICENSE.md', 'dist/linux-x64/dawn.node'].map((f) => [join(webgpu, f), `app/node_modules/webgpu/${f}`]),
  `npm webgpu ${JSON.parse(readFileSync(join(webgpu, 'package.json'), 'utf8')).version}, linux-x64 only`,
);

const app = [
  ...['hvp.js', 'bench.js', 'selfcheck.js'].map((f) => [join(ROOT, 'dist', f), `app/dist/${f}`]),
  ...['torch_step.py', 'torch_loader.py'].map((f) => [join(ROOT, 'bench/peers', f), `app/bench/peers/${f}`]),
];
packing['app.tar.xz'] = packPart('app.tar.xz', app, 'dist/hvp.js, dist/bench.js, dist/selfcheck.js (no source maps), bench/peers/torch_step.py and torch_loader.py', (stage) => {
  // The bundles are ES modules in .js files: node reads them as such under a package.json that says so.
  writeFileSync(join(stage, 'app/package.json'), '{ "type": "module", "private": true }\n');
});

if (!values['no-sharp']) {
  const sharpDeps = ['sharp/package.json', 'sharp/LICENSE', 'sharp/dist', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64', '@img/colour', 'detect-libc', 'semver'];
  const missing = sharpDeps.filter((p) => !existsSync(join(modules, p)));
  if (missing.length) throw new Error(`sharp's files are missing from node_modules: ${missing.join(', ')} (npm ci, or --no-sharp)`);
  const version = JSON.parse(readFileSync(join(modules, 'sharp/package.json'), 'utf8')).version;
  packing['sharp.tar.xz'] = packPart('sharp.tar.xz', sharpDeps.map((p) => [join(modules, p), `app/node_modules/${p}`]), `sharp ${version} with libvips for linux-x64 (glibc)`);
} else {
  rmSync(join(OUT, 'sharp.tar.xz'), { force: true });
}

// The loader's JPEG decoder where this checkout built it, with the libjpeg it links (a bare host may
// have none): run.sh puts lib/ on LD_LIBRARY_PATH, and the bundles find app/build/jpeg.node.
const jpegAddon = join(ROOT, 'build', 'jpeg.node');
if (existsSync(jpegAddon)) {
  const linked = spawnSync('ldd', [jpegAddon], { encoding: 'utf8' }).stdout.match(/libjpeg\.so\.62 => (\S+)/);
  if (!linked) throw new Error(`ldd ${jpegAddon} names no libjpeg.so.62`);
  const entries = [[jpegAddon, 'app/build/jpeg.node'], [realpathSync(linked[1]), 'lib/libjpeg.so.62']];
  const copyright = '/usr/share/doc/libjpeg62-turbo/copyright';
  if (existsSync(copyright)) entries.push([copyright, 'lib/libjpeg62-turbo.copyright']);
  packing['jpeg.tar.gz'] = packPart('jpeg.tar.gz', entries, `the loader's JPEG decoder (build/jpeg.node) and the libjpeg it links (${linked[1]})`);
} else {
  rmSync(join(OUT, 'jpeg.tar.gz'), { force: true });
  console.log('gpu-kit: build/jpeg.node is not built (npm run build:jpeg): the kit\'s loader decodes JPEGs with sharp');
}

const vk = vulkanLoader();
try {
  const entries = [[vk.file, 'lib/libvulkan.so.1']];
  if (existsSync(vk.copyright)) entries.push([vk.copyright, 'lib/libvulkan1.copyright']);
  packing['vulkan.tar.gz'] = packPart('vulkan.tar.gz', entries, `Vulkan loader: ${vk.source}`);
  await Promise.all(Object.values(packing));
} finally {
  rmSync(vk.dir, { recursive: true, force: true });
}
for (const [name, part] of Object.entries(packing)) parts[name] = await part;

// The scripts travel as plain text: the host reads them before anything is unpacked.
for (const f of ['run.sh', 'run-kit.mjs']) copyFileSync(join(ROOT, 'scripts/gpu-kit', f), join(OUT, f));
chmodSync(join(OUT, 'run.sh'), 0o755);

const manifest = {
  built: new Date().toISOString(),
  commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || null,
  node: process.version,
  sharp: !values['no-sharp'],
  parts,
};
writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
const total = readdirSync(OUT).reduce((s, f) => s + statSync(join(OUT, f)).size, 0);
for (const [name, p] of Object.entries(parts)) console.log(`  ${name.padEnd(14)} ${mib(p.bytes).padStart(10)}  ${p.what}`);
console.log(`gpu-kit: ${relative(process.cwd(), OUT) || '.'}/ ${mib(total)} in all (limit ${mib(KIT_LIMIT_BYTES)})`);
if (total > KIT_LIMIT_BYTES) {
  console.error(`gpu-kit: the kit is ${mib(total)}, over its limit of ${mib(KIT_LIMIT_BYTES)}`);
  process.exit(1);
}
