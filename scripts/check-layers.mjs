// The import rules of the tree, checked on every .ts file (plain Node, no dependency):
//  - layers: engine <- models <- hvp <- bench <- cli (each may import only the layers to its left and
//    itself; the CLI loads the bench for `hvp bench`); test/, scripts/ and root files may import anything;
//  - outside engine/, only the engine's public entry points (PUBLIC) are imported, never its internals;
//  - no import cycles (static, type-only and dynamic imports all count), except those in ALLOWED_CYCLES.
// Prints the violations and exits 1 if there are any; `--json` prints the whole result, `--cycles`
// every cycle found (allowed ones included).

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIRS = ['engine', 'models', 'hvp', 'bench', 'cli', 'test', 'scripts'];

/** What each layer may import (besides itself). Layers absent here (test, scripts, root) import anything. */
const ALLOWED = {
  engine: [],
  models: ['engine'],
  hvp: ['engine', 'models'],
  bench: ['engine', 'models', 'hvp'],
  cli: ['engine', 'models', 'hvp', 'bench'],
};

/** The engine's public entry points: everything else under engine/ is internal to it. */
export const PUBLIC = ['engine/index.ts', 'engine/node.ts', 'engine/ops/index.ts', 'engine/nn/index.ts', 'engine/io/index.ts', 'engine/optim/index.ts'];

/**
 * Cycles tolerated, each as the full set of files it may span; a cycle that grows past its set fails.
 * Empty: the tree has none, and a new one fails the check.
 */
export const ALLOWED_CYCLES = [];

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(join(ROOT, dir), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/**
 * The source with comments removed and template literals emptied, string literals kept: import
 * specifiers are plain strings, and WGSL or text in templates and comments must not read as imports.
 * Regex literals are not recognised; the imports of a file come before any of them.
 */
function stripComments(src) {
  let out = '';
  let i = 0;
  const depth = []; // template nesting: brace depth inside each ${ }
  while (i < src.length) {
    const c = src[i];
    const n = src[i + 1];
    if (c === '/' && n === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && n === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 2;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else if (c === '`' || (c === '}' && depth.length && depth[depth.length - 1] === 0)) {
      if (c === '}') depth.pop();
      // Skip template text up to its end or the next ${.
      let j = i + 1;
      while (j < src.length && src[j] !== '`' && !(src[j] === '$' && src[j + 1] === '{')) j += src[j] === '\\' ? 2 : 1;
      if (src[j] === '$') {
        depth.push(0);
        out += '`${';
        i = j + 2;
      } else {
        out += '``';
        i = j + 1;
      }
    } else {
      if (depth.length && c === '{') depth[depth.length - 1]++;
      if (depth.length && c === '}') depth[depth.length - 1]--;
      out += c;
      i++;
    }
  }
  return out;
}

const IMPORT_RES = [
  /\b(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?)\s+from\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
];

function importsOf(file, source) {
  const code = stripComments(source);
  const specs = new Set();
  for (const re of IMPORT_RES) for (const m of code.matchAll(re)) specs.add(m[1]);
  const out = [];
  for (const spec of specs) {
    if (!spec.startsWith('.')) continue;
    const target = relative(ROOT, resolve(ROOT, dirname(file), spec)).split(sep).join('/');
    out.push({ spec, target: target.replace(/\.js$/, '.ts') });
  }
  return out;
}

function layerOf(file) {
  const top = file.includes('/') ? file.slice(0, file.indexOf('/')) : '';
  return top;
}

/** Strongly connected components with more than one file (or a file importing itself): Tarjan's algorithm. */
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** One concrete cycle through `start` inside the component, for the message. */
function cyclePath(graph, comp, start) {
  const inComp = new Set(comp);
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (w === start) {
        const path = [v];
        for (let p = prev.get(v); p; p = prev.get(p)) path.unshift(p);
        return [...path, start];
      }
      if (inComp.has(w) && !prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

/**
 * The violations among `sources` (repository path → TypeScript source). `cycles` lists every import
 * cycle found, allowed or not.
 */
export function analyse(sources, allowedCycles = ALLOWED_CYCLES) {
  const files = [...sources.keys()].sort();
  const known = new Set(files);
  const graph = new Map();
  const violations = [];
  for (const file of files) {
    const layer = layerOf(file);
    const edges = [];
    for (const { spec, target } of importsOf(file, sources.get(file))) {
      if (known.has(target)) edges.push(target);
      const to = layerOf(target);
      if (!(layer in ALLOWED)) continue;
      if (to !== layer && !ALLOWED[layer].includes(to)) {
        violations.push(`layer: ${file} (${layer}) imports ${spec} (${to || 'root'}); ${layer} may import only ${[layer, ...ALLOWED[layer]].join(', ')}`);
      } else if (to === 'engine' && layer !== 'engine' && !PUBLIC.includes(target)) {
        violations.push(`engine internal: ${file} imports ${spec}; outside engine/ import only ${PUBLIC.join(', ')}`);
      }
    }
    graph.set(file, edges);
  }
  const found = cycles(graph);
  for (const comp of found) {
    if (allowedCycles.some((allowed) => comp.every((f) => allowed.includes(f)))) continue;
    violations.push(`cycle: ${cyclePath(graph, comp, comp[0]).join(' -> ')} (files in the cycle: ${comp.join(', ')})`);
  }
  return { files: files.length, violations, cycles: found };
}

/** analyse() over every .ts file of the repository's source folders. */
export function checkLayers() {
  const files = DIRS.flatMap((d) => walk(d, []));
  return analyse(new Map(files.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')])));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = checkLayers();
  if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
  else if (process.argv.includes('--cycles')) console.log(result.cycles.map((c) => c.join(' ')).join('\n'));
  else if (result.violations.length) console.error(result.violations.join('\n'));
  else console.log(`check-layers: ${result.files} files, no violations`);
  process.exit(result.violations.length ? 1 : 0);
}
