// The WGSL include step (engine/shader.ts): snippets pasted in place, recursively and once each,
// before the ${NAME} / #if templating; cycles and unknown names are errors that name the snippet.

import { describe, expect, it } from 'vitest';
import { resolveIncludes, SNIPPETS } from '../engine/index.js';
import { preprocess, type Defines } from '../engine/shader.js';
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

  // What each snippet expects its including kernel to declare (see the snippet's header), and its template values.
  const contexts: Record<string, { uniforms?: string; decls?: string; defines?: Defines }> = {
    affine: { uniforms: 'off_w: u32', decls: '@group(0) @binding(1) var<storage, read> w: array<f32>;', defines: { HAS_W: true } },
    bias: { uniforms: 'off_bias: u32', decls: '@group(0) @binding(1) var<storage, read> bias: array<f32>;', defines: { HAS_BIAS: true } },
    attention: {
      uniforms: 'grid_y: u32',
      decls: '@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;\n@group(0) @binding(2) var<storage, read> y: array<vec4<f32>>;',
      defines: { D: 64, DC: 4, PARTS: 4, TM: 2, RT: 8, BS: 8, VEC_IO: true },
    },
    gemm: { defines: { BIAS: true, OUT_BINDING: 4, TM: 4, TN: 4, WX: 8, WY: 8 } },
    reduce: { decls: 'const WG = 64u;\nconst RED_N = 16u;\nalias Red = vec2<f32>;\nfn combine(a: Red, b: Red, op: u32) -> Red { return a + b; }' },
    rows: { decls: 'const WG = 64u;\nconst TPR = 16u;' },
    strided: {
      uniforms: 'rank: u32, chunks: u32, off: vec4<u32>, shape: array<vec4<u32>, 2>',
      decls: 'const CHUNK = 4u;\nfn strides_at(d: u32) -> vec4<u32> { return vec4<u32>(d); }',
    },
  };

  it("the engine's snippets compile", async () => {
    const e = await engine();
    for (const name of Object.keys(SNIPPETS)) {
      const c = contexts[name] ?? {};
      const fields = ['row_width: u32', c.uniforms].filter(Boolean).join(', ');
      const code = `struct U { ${fields} }\n@group(0) @binding(0) var<uniform> u: U;\n${c.decls ?? ''}\n#include "${name}"\n@compute @workgroup_size(1) fn main() {}`;
      const module = e.backend.device.createShaderModule({ code: preprocess(code, c.defines) });
      const info = await module.getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => m.message), name).toEqual([]);
    }
  });
});
