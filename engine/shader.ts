import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { SNIPPETS } from './snippets/index.js';

/** A value the WGSL preprocessor substitutes or tests. */
export type DefineValue = string | number | boolean;
/** Template values of a kernel source, by name. */
export type Defines = Record<string, DefineValue>;
/** Named WGSL snippets that `#include "name"` pastes in. */
export type Snippets = Readonly<Record<string, string>>;

export { SNIPPETS };

/**
 * Replace every `#include "name"` line by the snippet of that name, recursively. A snippet is pasted
 * once, where it is first included (later includes of it expand to nothing), so two snippets may
 * share a third without defining its functions twice; keep includes outside `#if` branches for that
 * reason. `snippets` defaults to the engine's registry (snippets/index.ts); kernels add their own.
 */
export function resolveIncludes(source: string, snippets: Snippets = SNIPPETS): string {
  const pasted = new Set<string>();
  const expand = (text: string, stack: readonly string[]): string =>
    text.replace(/^[ \t]*#include\b(.*)$/gm, (line, rest: string) => {
      const m = /^[ \t]+"([\w./-]+)"[ \t]*(\/\/.*)?$/.exec(rest);
      if (!m) throw new Error(`WGSL: malformed include '${line.trim()}' (expected #include "name")`);
      const name = m[1];
      if (stack.includes(name)) throw new Error(`WGSL #include cycle: ${[...stack, name].join(' -> ')}`);
      if (!Object.hasOwn(snippets, name)) {
        const from = stack.length ? ` (included from "${stack[stack.length - 1]}")` : '';
        throw new Error(`WGSL #include "${name}"${from}: no snippet of that name; known: ${Object.keys(snippets).sort().join(', ')}`);
      }
      if (pasted.has(name)) return '';
      pasted.add(name);
      return expand(snippets[name], [...stack, name]);
    });
  return expand(source, []);
}

/**
 * Expand a WGSL template. `#include "name"` lines are resolved first (resolveIncludes). Templates are
 * plain .wgsl files that use `${NAME}` both for substitution (`const TILE = ${TILE}u;`) and for
 * conditionals (`#if ${TRANS_A}` ... `#else` ... `#endif`); the conditionals are resolved by
 * wgsl-preprocessor, so a kernel's variants live in one file.
 */
export function preprocess(source: string, defines: Defines = {}): string {
  source = resolveIncludes(source);
  const strings: string[] = [];
  const values: DefineValue[] = [];
  const re = /\$\{(\w+)\}/g;
  let last = 0;
  for (let m = re.exec(source); m; m = re.exec(source)) {
    const name = m[1];
    if (!(name in defines)) throw new Error(`WGSL template uses \${${name}} but no value was given for it`);
    strings.push(source.slice(last, m.index));
    values.push(defines[name]);
    last = m.index + m[0].length;
  }
  strings.push(source.slice(last));
  return wgsl(strings, ...values);
}
