// The sources speak of the project only: no comment or doc cites a document outside the repository
// ("the brief's", "the targets"), and the modules that held dead helpers export only what
// other code uses.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SKIP = new Set(['node_modules', 'dist', '.git', 'runs', 'fixtures']);

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name) || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (/\.(ts|mts|mjs|wgsl|md|yaml|css|html)$/.test(name)) out.push(p);
  }
  return out;
}

/** Phrases that point at a task document rather than at the repository. */
const OUTSIDE = /\bthe brief'?s?\b|\bthe (engine[- ]|speed[- ]|engine-speed )?issue'?s?\b|\b(engine|speed)[- ]issue\b/i;

describe('source hygiene', () => {
  it('no file cites a brief or an issue instead of stating the fact or pointing at docs/', () => {
    const self = relative(ROOT, import.meta.filename);
    const hits = files(ROOT)
      .map((p) => relative(ROOT, p))
      .filter((p) => p !== self && p !== 'test/source-hygiene.test.ts')
      .flatMap((p) => readFileSync(join(ROOT, p), 'utf8').split('\n').map((line, i) => ({ p, i, line })))
      .filter(({ line }) => OUTSIDE.test(line))
      .map(({ p, i, line }) => `${p}:${i + 1}: ${line.trim()}`);
    expect(hits).toEqual([]);
  });

  it.each(['engine/ops/norm-params.ts', 'hvp/select/combinations.ts'])('every export of %s is used elsewhere', (module) => {
    const source = readFileSync(join(ROOT, module), 'utf8');
    const names = [...source.matchAll(/^export (?:async )?(?:function|const|class|type|interface) (\w+)/gm)].map((m) => m[1]);
    expect(names.length).toBeGreaterThan(0);
    const others = files(ROOT)
      .filter((p) => /\.(ts|mts|mjs)$/.test(p) && relative(ROOT, p) !== module)
      .map((p) => readFileSync(p, 'utf8'))
      .join('\n');
    // Used = imported by name (directly or through an index that re-exports it).
    const unused = names.filter((n) => !new RegExp(`import\\s+(type\\s+)?\\{[^}]*\\b${n}\\b[^}]*\\}\\s*from`).test(others));
    expect(unused).toEqual([]);
  });
});
