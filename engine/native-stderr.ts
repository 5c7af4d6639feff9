// Filtering what native code writes to stderr during one synchronous call. Dawn prints some notices
// with fprintf(stderr) and no level setting or callback to silence them, so a filter on
// process.stderr never sees them: only file descriptor 2 itself can be redirected. Node has no
// dup2, but open() returns the lowest free descriptor, so closing 2 and opening a file puts that
// file at 2; the original is reopened through /proc/self/fd the same way afterwards. Everything
// captured is written back to stderr except the lines `drop` matches. Node only (Linux).

import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Run fn with fd 2 pointing at a temporary file, then write what it captured to the real stderr
 * without the lines `drop` matches. The redirection only happens where reopening fd 2 through
 * /proc/self/fd gives back the same stream: a terminal, a pipe (`| tee`), a device, or a file
 * opened for appending. A file opened otherwise is left alone, since a second description of it
 * would write at its own offset over what stdout writes through a shared one (`> log 2>&1`); so is
 * a socket, which cannot be reopened (Node's child_process hands its children socket pairs: the
 * reader there is a program, not a terminal). There fn simply runs unfiltered.
 */
export function withNativeStderrFiltered<T>(fn: () => T, drop: RegExp[]): T {
  let saved: number;
  try {
    // With 0 or 1 closed, the file would land there instead of at 2.
    fstatSync(0);
    fstatSync(1);
    if (fstatSync(2).isFile() && !appending(2)) return fn();
    saved = openSync('/proc/self/fd/2', 'a');
  } catch {
    return fn(); // no /proc (not Linux), a closed stdin/stdout, or a socket that cannot be reopened
  }
  const path = join(tmpdir(), `hvp-stderr-${process.pid}-${Date.now()}`);
  let captured = -1;
  try {
    closeSync(2);
    captured = openSync(path, 'w+');
    unlinkSync(path);
  } catch {
    // fall through: restore below runs fn unfiltered
  }
  if (captured !== 2) {
    // Another thread took descriptor 2 first: put stderr back as it was.
    if (captured >= 0) closeSync(captured);
    restore(saved);
    return fn();
  }
  let text = '';
  try {
    return fn();
  } finally {
    const size = fstatSync(2).size;
    if (size > 0) {
      const buf = Buffer.alloc(size);
      readSync(2, buf, 0, size, 0);
      text = buf.toString('utf8');
    }
    closeSync(2);
    restore(saved);
    const kept = text
      .split('\n')
      .filter((line, i, all) => !(i === all.length - 1 && line === '') && !drop.some((re) => re.test(line)));
    if (kept.length) writeSync(2, kept.join('\n') + '\n');
  }
}

/** Whether a descriptor was opened with O_APPEND (its flags, in octal, in /proc/self/fdinfo). */
function appending(fd: number): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  return flags !== undefined && (parseInt(flags, 8) & constants.O_APPEND) !== 0;
}

/** Reopen the saved stderr at descriptor 2 (the lowest free one) and close the copy. */
function restore(saved: number): void {
  try {
    closeSync(2);
  } catch {
    // 2 is already closed
  }
  const fd = openSync(`/proc/self/fd/${saved}`, 'a');
  closeSync(saved);
  if (fd !== 2) throw new Error(`stderr could not be restored at descriptor 2 (reopened as ${fd})`);
}
