// What build-mpi.mjs and build-jpeg.mjs share: where Node's C headers are, and one compile of a
// Node-API source into build/<name>.node, offline.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root (the checkout, or the installed package). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Node's C headers: under the running Node's prefix, else Debian's /usr/include/node. */
export function nodeHeaders() {
  const candidates = [join(process.config.variables.node_prefix ?? '/usr', 'include', 'node'), join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'];
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}

/**
 * Compile `source` (relative to ROOT) with `cc` into `out` against Node's headers in `headers`, then
 * `libs` (e.g. '-ljpeg'). Throws when the compiler fails; its output goes to the terminal.
 */
export function compileAddon(cc, source, out, headers, libs = []) {
  mkdirSync(dirname(out), { recursive: true });
  // Node resolves its own symbols at load time, so they stay undefined in the shared object.
  const args = ['-O2', '-shared', '-fPIC', `-I${headers}`, '-DNAPI_VERSION=8', join(ROOT, source), ...libs, '-o', out];
  if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
  try {
    execFileSync(cc, args, { stdio: 'inherit' });
  } catch (e) {
    throw new Error(`${cc} ${args.join(' ')} failed`, { cause: e });
  }
}
