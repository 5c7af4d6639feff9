import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

export type DefineValue = string | number | boolean;
export type Defines = Record<string, DefineValue>;

/**
 * Expand a WGSL template. Templates are plain .wgsl files that use `${NAME}` both for substitution
 * (`const TILE = ${TILE}u;`) and for conditionals (`#if ${TRANS_A}` ... `#else` ... `#endif`); the
 * conditionals are resolved by wgsl-preprocessor, so a kernel's variants live in one file.
 */
export function preprocess(source: string, defines: Defines = {}): string {
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
