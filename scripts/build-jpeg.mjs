// Builds the loader's JPEG decoder (hvp/data/jpeg.c) into build/jpeg.node with the system's C compiler,
// libjpeg(-turbo) and Node's own headers, offline. Runs at `npm ci`/`npm install` and as `npm run
// build:jpeg`. Without a compiler or libjpeg's headers it prints one line and exits 0: image folders
// then decode JPEGs with sharp, as they do every other format.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compileAddon, nodeHeaders, ROOT } from './native-addon.mjs';

const ADDON = join(ROOT, 'build', 'jpeg.node');
const INSTALL = 'apt-get install gcc libjpeg-dev, then npm run build:jpeg';

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
  try {
    compileAddon(cc, 'hvp/data/jpeg.c', ADDON, headers, ['-ljpeg']);
  } catch (e) {
    console.error(`build-jpeg: ${e.message}; image folders decode JPEGs with sharp`);
    return 0;
  }
  console.log(`build-jpeg: built ${ADDON}`);
  return 0;
}

process.exit(main());
