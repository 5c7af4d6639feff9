// The MPI binding (mpi.c, built into build/mpi.node by scripts/build-mpi.mjs), loaded only when the
// process was launched by mpirun or srun with more than one rank: a single process never loads MPI.
// A distributed launch without the binding ends with exit 1 and the commands that install it.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { builtAddonCandidates } from '../native-addon.js';

/** The binding's calls (all blocking, on the main thread). */
export interface MpiBinding {
  /** MPI_Init_thread(MPI_THREAD_FUNNELED); returns the thread level granted. */
  init(): number;
  rank(): number;
  size(): number;
  /** Rank among the ranks of this node (MPI_COMM_TYPE_SHARED). */
  localRank(): number;
  barrier(): void;
  /** Every rank's array gets `root`'s values, in place. */
  broadcast(a: Float32Array | Float64Array | Int32Array | Uint8Array, root: number): void;
  /** Element-wise sum over the ranks, in place. */
  allreduceSum(a: Float32Array | Float64Array | Int32Array): void;
  /** `recv` (world size × send.length) gets every rank's `send`, in rank order. */
  allgather<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(send: T, recv: T): void;
  /** Ends every rank of the job with `code`; does not return. */
  abort(code: number): never;
  finalize(): void;
}

export const INSTALL_HINT =
  'install Open MPI (Debian/Ubuntu: apt-get install libopenmpi-dev openmpi-bin), then build the binding: npm run build:mpi (npm ci and npm install build it too)';

/** The world size the launcher announced, from its environment (1 when not launched by one). */
export function launcherWorldSize(env: NodeJS.ProcessEnv = process.env): number {
  for (const key of ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'PMIX_SIZE', 'SLURM_NTASKS']) {
    const n = Number(env[key]);
    if (Number.isInteger(n) && n > 0) return n;
  }
  return 1;
}

/** This process's rank in the whole job as the launcher announced it (0 when none did). */
export function launcherRank(env: NodeJS.ProcessEnv = process.env): number {
  for (const key of ['OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'PMIX_RANK', 'SLURM_PROCID']) {
    const n = Number(env[key]);
    if (Number.isInteger(n) && n >= 0 && env[key] !== undefined && env[key] !== '') return n;
  }
  return 0;
}

/** The rank within the node the launcher announced (0 when none did). */
export function launcherLocalRank(env: NodeJS.ProcessEnv = process.env): number {
  for (const key of ['OMPI_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID', 'SLURM_LOCALID']) {
    const n = Number(env[key]);
    if (Number.isInteger(n) && n >= 0 && env[key] !== '') return n;
  }
  return 0;
}

/** Where the binding may be (build/mpi.node at the project root). */
export function addonCandidates(): string[] {
  return builtAddonCandidates('mpi.node');
}

let loaded: MpiBinding | null = null;

/** Load the binding (once); an Error naming the install commands when it is not built. */
export function loadMpi(paths: readonly string[] = addonCandidates()): MpiBinding {
  if (loaded) return loaded;
  const path = paths.find((p) => existsSync(p));
  if (!path) throw new Error(`this process was launched with ${launcherWorldSize()} ranks but the MPI binding is not built: ${INSTALL_HINT}`);
  const require = createRequire(import.meta.url);
  try {
    loaded = require(path) as MpiBinding;
  } catch (e) {
    throw new Error(`the MPI binding ${path} does not load (${e instanceof Error ? e.message : e}): ${INSTALL_HINT}`);
  }
  return loaded;
}
