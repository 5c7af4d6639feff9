// Builds the optional MPI binding (hvp/distributed/mpi.c) into build/mpi.node with Open MPI's
// `mpicc` and Node's own headers, offline. Runs at `npm ci`/`npm install` and as `npm run build:mpi`; without
// `mpicc` it prints one line and exits 0, since single-process use needs no MPI. A failed compile
// where mpicc exists exits 1: a distributed install that silently lacks its binding fails later.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const MPI_ADDON = join(ROOT, 'build', 'mpi.node');
const SOURCE = join(ROOT, 'hvp', 'distributed', 'mpi.c');

/** Node's C headers: under the running Node's prefix, else Debian's /usr/include/node. */
function nodeHeaders() {
  const candidates = [join(process.config.variables.node_prefix ?? '/usr', 'include', 'node'), join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'];
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}

function main() {
  if (spawnSync('mpicc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.log('build-mpi: mpicc not found, MPI binding not built (only needed for mpirun; apt-get install libopenmpi-dev openmpi-bin, then npm run build:mpi)');
    return 0;
  }
  const headers = nodeHeaders();
  if (!headers) {
    console.error('build-mpi: mpicc found but not Node\'s headers (node_api.h); install the nodejs headers (Debian: libnode-dev) and run node scripts/build-mpi.mjs');
    return 1;
  }
  mkdirSync(dirname(MPI_ADDON), { recursive: true });
  // Node resolves its own symbols at load time, so they stay undefined in the shared object.
  const args = ['-O2', '-shared', '-fPIC', `-I${headers}`, '-DNAPI_VERSION=8', SOURCE, '-o', MPI_ADDON];
  if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
  try {
    execFileSync('mpicc', args, { stdio: 'inherit' });
  } catch {
    console.error(`build-mpi: mpicc ${args.join(' ')} failed`);
    return 1;
  }
  console.log(`build-mpi: built ${MPI_ADDON}`);
  return 0;
}

process.exit(main());
