// The suite's temporary files go below the run's own directory (test/global-tmp.ts), which the
// global teardown removes: tests that make run directories with mkdtemp leave nothing behind.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUN_TMP_PREFIX } from './global-tmp.js';

describe('temporary files of a test run', () => {
  it("go below the run's own directory", () => {
    expect(basename(tmpdir()).startsWith(RUN_TMP_PREFIX)).toBe(true);
    const made = mkdtempSync(join(tmpdir(), 'hvp-probe-'));
    expect(dirname(made)).toBe(tmpdir());
  });
});
