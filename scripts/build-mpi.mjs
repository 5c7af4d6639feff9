// Builds the optional MPI binding (hvp/distributed/mpi.c) into build/mpi.node with Open MPI's
// `mpicc` and Node's own headers, offline. Runs at `npm ci`/`npm install` and as `npm run build:mpi`; without
// `mpicc` it prints one line and exits 0, since single-process use needs no MPI. A failed compile
// where mpicc exists exits 1: a distributed install that silently lacks its binding fails later.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compileAddon, nodeHeaders, ROOT } from './native-addon.mjs';

export const MPI_ADDON = join(ROOT, 'build', 'mpi.node');

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
  try {
    compileAddon('mpicc', 'hvp/distributed/mpi.c', MPI_ADDON, headers);
  } catch (e) {
    console.error(`build-mpi: ${e.message}`);
    return 1;
  }
  console.log(`build-mpi: built ${MPI_ADDON}`);
  return 0;
}

process.exit(main());
