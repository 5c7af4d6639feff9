// Builds the loader's JPEG decoder (hvp/data/jpeg.c) into build/jpeg.node with the system's C compiler,
// libjpeg(-turbo) and Node's own headers, offline. Runs at `npm ci`/`npm install` and as `npm run
// build:jpeg`. Without a compiler or libjpeg's headers it prints one line and exits 0: image folders
// then decode JPEGs with sharp, as they do every other format.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ADDON = join(ROOT, 'build', 'jpeg.node');
const SOURCE = join(ROOT, 'hvp', 'data', 'jpeg.c');
const INSTALL = 'apt-get install gcc libjpeg-dev, then npm run build:jpeg';

/** Node's C headers: under the running Node's prefix, else Debian's /usr/include/node. */
function nodeHeaders() {
  const candidates = [join(process.config.variables.node_prefix ?? '/usr', 'include', 'node'), join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'];
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}

function main() {
  const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
  const headers = nodeHeaders();
  // A test compile finds libjpeg's header wherever the compiler looks for it.
  const probe = cc && spawnSync(cc, ['-E', '-x', 'c', '-'], { input: '#include <stdio.h>\n#include <jpeglib.h>\n', stdio: ['pipe', 'ignore', 'ignore'] }).status === 0;
  if (!cc || !headers || !probe) {
    const missing = !cc ? 'no C compiler' : !headers ? "no Node headers (node_api.h)" : "no libjpeg headers (jpeglib.h)";
    console.log(`build-jpeg: ${missing}, so image folders decode JPEGs with sharp (${INSTALL})`);
    return 0;
  }
  mkdirSync(dirname(ADDON), { recursive: true });
  // Node resolves its own symbols at load time, so they stay undefined in the shared object.
  const args = ['-O2', '-shared', '-fPIC', `-I${headers}`, '-DNAPI_VERSION=8', SOURCE, '-ljpeg', '-o', ADDON];
  if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
  try {
    execFileSync(cc, args, { stdio: 'inherit' });
  } catch {
    console.error(`build-jpeg: ${cc} ${args.join(' ')} failed; image folders decode JPEGs with sharp`);
    return 0;
  }
  console.log(`build-jpeg: built ${ADDON}`);
  return 0;
}

process.exit(main());
