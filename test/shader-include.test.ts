// The WGSL include step (engine/shader.ts): snippets pasted in place, recursively and once each,
// before the ${NAME} / #if templating; cycles and unknown names are errors that name the snippet.

import { describe, expect, it } from 'vitest';
import { resolveIncludes, SNIPPETS } from '../engine/index.js';
import { preprocess } from '../engine/shader.js';
import { engine } from './helpers.js';

describe('#include', () => {
  const snippets = {
    a: 'fn a() {}\n#include "b"',
    b: 'fn b() {}',
    'sub/c': '#include "a"\n#include "b"\nfn c() {}',
    loop1: '#include "loop2"',
    loop2: '#include "loop1"',
  };

  it('pastes snippets recursively, each once, where first included', () => {
    expect(resolveIncludes('x\n#include "sub/c"\n  #include "a"\ny', snippets)).toBe('x\nfn a() {}\nfn b() {}\n\nfn c() {}\n\ny');
  });

  it('leaves sources without includes unchanged', () => {
    const src = '// #include "a" in a comment is not a directive\nfn main() {}';
    expect(resolveIncludes(src, snippets)).toBe(src);
  });

  it('reports a cycle with its path', () => {
    expect(() => resolveIncludes('#include "loop1"', snippets)).toThrow('WGSL #include cycle: loop1 -> loop2 -> loop1');
  });

  it('reports an unknown or malformed include', () => {
    expect(() => resolveIncludes('#include "b"\n#include "missing"', snippets)).toThrow(/#include "missing": no snippet of that name; known: a, b/);
    expect(() => resolveIncludes('#include "a"', { a: '#include "zz"' })).toThrow(/#include "zz" \(included from "a"\)/);
    expect(() => resolveIncludes('#include <b>', snippets)).toThrow(/malformed include/);
  });

  it('runs before the templating, so snippets may use ${NAME} and #if', () => {
    const out = preprocess('#include "grid"\nconst N = ${N}u;\n#if ${F}\nconst A = 1;\n#else\nconst A = 2;\n#endif', { N: 3, F: false });
    expect(out).toContain('fn flat_index(id: vec3<u32>) -> u32');
    expect(out).toContain('const N = 3u;');
    expect(out).toContain('const A = 2;');
    expect(out).not.toContain('const A = 1;');
  });

  it("the engine's snippets compile", async () => {
    const e = await engine();
    for (const name of Object.keys(SNIPPETS)) {
      const code = `struct U { row_width: u32 }\n@group(0) @binding(0) var<uniform> u: U;\n#include "${name}"\n@compute @workgroup_size(1) fn main() {}`;
      const module = e.backend.device.createShaderModule({ code: resolveIncludes(code) });
      const info = await module.getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => m.message), name).toEqual([]);
    }
  });
});
