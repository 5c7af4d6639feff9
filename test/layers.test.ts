// The import rules (scripts/check-layers.mjs) hold for the tree, and the checker catches each kind of
// violation on a small made-up tree.

import { describe, expect, it } from 'vitest';
import { ALLOWED_CYCLES, analyse, checkLayers } from '../scripts/check-layers.mjs';

describe('layers', () => {
  it('the tree has no upward import, no engine-internal import from outside and no cycle beyond the allowlist', () => {
    const report = checkLayers();
    expect(report.files).toBeGreaterThan(100);
    expect(report.violations).toEqual([]);
    expect(report.cycles).toEqual([]);
    // An allowlist entry whose cycle is gone must go too.
    for (const allowed of ALLOWED_CYCLES) {
      expect(report.cycles.some((c) => c.every((f) => allowed.includes(f))), `stale allowlist entry ${allowed.join(', ')}`).toBe(true);
    }
  });

  const tree = (files: Record<string, string>) => new Map(Object.entries(files));

  it('reports an upward import and an engine internal', () => {
    const { violations } = analyse(
      tree({
        'engine/index.ts': "export * from './tensor.js';",
        'engine/tensor.ts': "import { x } from '../hvp/a.js';",
        'hvp/a.ts': "import { Progress } from '../cli/progress.js';\nimport { t } from '../engine/tensor.js';\nimport { E } from '../engine/index.js';",
        'cli/progress.ts': '',
        'test/t.test.ts': "import { t } from '../engine/tensor.js';\nimport { p } from '../cli/progress.js';",
      }),
      [],
    );
    expect(violations).toEqual([
      'layer: engine/tensor.ts (engine) imports ../hvp/a.js (hvp); engine may import only engine',
      'layer: hvp/a.ts (hvp) imports ../cli/progress.js (cli); hvp may import only hvp, engine, models',
      expect.stringMatching(/^engine internal: hvp\/a\.ts imports \.\.\/engine\/tensor\.js/),
      'cycle: engine/index.ts -> engine/tensor.ts -> hvp/a.ts -> engine/index.ts (files in the cycle: engine/index.ts, engine/tensor.ts, hvp/a.ts)',
    ]);
  });

  it('counts type-only, re-export and dynamic imports, not imports in comments or template text', () => {
    const { violations, cycles } = analyse(
      tree({
        'hvp/a.ts': "import type { B } from './b.js';\n// import { c } from './c.js';\nconst s = `import { c } from './c.js'`;",
        'hvp/b.ts': "export { a } from './a.js';",
        'hvp/c.ts': "const m = await import('./d.js');",
        'hvp/d.ts': "/* import './c.js' */ import './c.js';",
      }),
      [],
    );
    expect(cycles).toEqual([['hvp/a.ts', 'hvp/b.ts'], ['hvp/c.ts', 'hvp/d.ts']]);
    expect(violations).toHaveLength(2);
  });

  it('lets an allowlisted cycle through, but not one that grows past its files', () => {
    const files = {
      'engine/a.ts': "import './b.js';",
      'engine/b.ts': "import './a.js';",
      'engine/c.ts': "import './a.js';",
    };
    expect(analyse(tree(files), [['engine/a.ts', 'engine/b.ts']]).violations).toEqual([]);
    const grown = analyse(tree({ ...files, 'engine/b.ts': "import './a.js';\nimport './c.js';" }), [['engine/a.ts', 'engine/b.ts']]);
    expect(grown.violations).toEqual([expect.stringMatching(/^cycle: .*\(files in the cycle: engine\/a\.ts, engine\/b\.ts, engine\/c\.ts\)$/)]);
  });
});
