// The project's optional native parts, build/<name>.node (scripts/build-mpi.mjs, build-jpeg.mjs): where
// they are, whichever way this code runs.

import { fileURLToPath } from 'node:url';

/**
 * Where build/`name` may be: build/ at the project root, seen from the source tree (hvp/), from the
 * CLI bundle (dist/) or from the library (dist/lib/).
 */
export function builtAddonCandidates(name: string): string[] {
  return ['../build/', '../../build/'].map((dir) => fileURLToPath(new URL(dir + name, import.meta.url)));
}
