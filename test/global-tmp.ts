// Vitest's global setup: every temporary file of a test run (tests' run directories, fixtures they
// write, the CLIs and the browser they start) goes below one directory of that run, since
// os.tmpdir() follows TMPDIR and the workers and their children inherit it; the directory is
// removed when the run ends, so a run leaves nothing behind in the system's temporary directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const RUN_TMP_PREFIX = 'hvp-tests-';

export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), RUN_TMP_PREFIX));
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(dir, { recursive: true, force: true });
  };
}
