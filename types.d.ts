// WGSL sources are bundled as plain text (esbuild's text loader; a vite plugin in tests).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
// Training presets (hvp/presets/*.yaml) are bundled the same way.
declare module '*.yaml' {
  const source: string;
  export default source;
}
declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  export function wgsl(strings: readonly string[], ...values: unknown[]): string;
}
// Library files inlined into generated pages (the report's chart library) are bundled as text too.
declare module '*?raw' {
  const text: string;
  export default text;
}
