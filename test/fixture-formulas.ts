// The fixture generators' formulas (scripts/fixtures/formulas.py) in a module free of vitest, for the
// tests and the self-check (test/selfcheck/) alike.

/** The generators' hash_uniform (scripts/fixtures/formulas.py): lowbias32 of i·0x9E3779B1 + k·0x85EBCA77 + 1 (mod 2³²), mapped to [-1, 1). */
export function hashUniform(k: number, n: number): Float64Array {
  const base = (Math.imul(k, 0x85ebca77) + 1) >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let h = (Math.imul(i, 0x9e3779b1) + base) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b);
    h ^= h >>> 16;
    out[i] = (h >>> 0) / 2 ** 31 - 1;
  }
  return out;
}
