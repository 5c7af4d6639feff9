#!/usr/bin/env node
// Make sure this machine can run the project: a WebGPU adapter (and, with --data, the built-in
// Fashion-MNIST data; with --browser, Debian's Chromium for the report's browser test). On Debian/Ubuntu as root it installs what is missing and says so; elsewhere it
// prints exactly what to install. Fast when everything is already there.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { diagnose, gatherHostFacts, unusedGpuWarning } from '../engine/host-gpu.mjs';

const wantData = process.argv.includes('--data');
const wantBrowser = process.argv.includes('--browser');
const log = (msg) => console.error(`[setup] ${msg}`);
process.env.XDG_RUNTIME_DIR ??= '/tmp';

const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  log(`Node ${process.versions.node} is too old: install Node 20 or newer.`);
  process.exit(1);
}

// Probe in a child process: a driver that crashes must not take this script down with it.
function probeAdapter() {
  const code = `
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const a = await gpu.requestAdapter();
    if (!a) process.exit(3);
    await a.requestDevice();
    const name = [a.info.vendor, a.info.architecture, a.info.description].filter(Boolean).join(' / ');
    console.log(JSON.stringify({ name, software: a.info.isFallbackAdapter }));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  return r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()) : null;
}

// A GPU on this host that Dawn does not offer: say so loudly, with what is missing and its fix,
// before a software adapter is installed or used in its place.
function warnIfGpuUnused(adapter, installing) {
  const warning = unusedGpuWarning(diagnose(gatherHostFacts(), adapter ? [adapter] : []), adapter?.name ?? null, installing);
  if (warning) console.error(warning);
}

const isRoot = process.getuid?.() === 0;
const isDebian = existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
let aptUpdated = false;
function apt(args) {
  if (!aptUpdated) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env: aptEnv });
    aptUpdated = true;
  }
  execFileSync('apt-get', ['install', '-y', '-qq', ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: aptEnv });
}

function codename() {
  const m = /VERSION_CODENAME=(\w+)/.exec(readFileSync('/etc/os-release', 'utf8'));
  return m ? m[1] : '';
}

function installLavapipe() {
  // Dawn refuses the Mesa 22 of Debian bookworm; bookworm-backports carries Mesa 25, which works.
  if (codename() === 'bookworm') {
    const list = '/etc/apt/sources.list.d/bookworm-backports.list';
    const hasBackports = spawnSync('grep', ['-rqs', 'bookworm-backports', '/etc/apt/sources.list', '/etc/apt/sources.list.d']).status === 0;
    if (!hasBackports) {
      log(`adding bookworm-backports (${list})`);
      writeFileSync(list, 'deb http://deb.debian.org/debian bookworm-backports main\n');
    }
    log('installing mesa-vulkan-drivers from bookworm-backports (lavapipe, a software Vulkan driver)');
    apt(['-t', 'bookworm-backports', 'mesa-vulkan-drivers']);
  } else {
    log('installing mesa-vulkan-drivers (lavapipe, a software Vulkan driver)');
    apt(['mesa-vulkan-drivers']);
  }
}

if (!existsSync(new URL('../node_modules/webgpu/package.json', import.meta.url))) {
  log('npm packages are missing: run `npm ci` first.');
  process.exit(1);
}

let adapter = probeAdapter();
if (adapter?.software) warnIfGpuUnused(adapter, false);
if (!adapter) {
  if (isDebian && isRoot) {
    log('no WebGPU adapter found');
    warnIfGpuUnused(null, true);
    installLavapipe();
    adapter = probeAdapter();
  }
  if (!adapter) {
    if (!(isDebian && isRoot)) warnIfGpuUnused(null, false);
    log('No WebGPU adapter is available.');
    log('Install a Vulkan driver: your GPU vendor\'s, or Mesa\'s lavapipe (Mesa >= 24; Debian bookworm:');
    log('  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list');
    log('  apt-get update && apt-get install -t bookworm-backports mesa-vulkan-drivers)');
    log('then check with `vulkaninfo --summary` and run this again.');
    process.exit(1);
  }
  log(`WebGPU adapter ready: ${adapter.name}`);
}

if (wantData && !existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')) {
  if (isDebian && isRoot) {
    log('installing the built-in data set (Debian package dataset-fashion-mnist)');
    apt(['dataset-fashion-mnist']);
  } else {
    log('Fashion-MNIST is missing: install Debian\'s dataset-fashion-mnist, or pass --data DIR with the IDX files.');
    process.exit(1);
  }
}

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (wantBrowser && !existsSync(chromium)) {
  if (isDebian && isRoot) {
    log('installing Chromium (Debian package chromium) for the report\'s browser test');
    apt(['chromium']);
  } else {
    // Only the report's browser test needs it, and it skips saying why (CI makes that a failure).
    log(`Chromium is missing at ${chromium}: install Debian's chromium (or your distribution's), or set CHROMIUM_PATH; the report's browser test will skip.`);
  }
}
