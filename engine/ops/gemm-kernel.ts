// The register-tiled GEMM's declaration, shared by matmul and conv2d (both include snippets/gemm.wgsl):
// C = A · B (+ bias) with bindings a, b, an optional bias and c. One declaration serves every tile
// configuration: a launch gives the tile as template values and its workgroup size, [WX, WY].

import { defineKernel, type KernelDef, type UniformFields } from '../kernel.js';

/** Each invocation accumulates a TM×TN block, a workgroup of WX×WY invocations; BK: slab depth (staged). */
export interface GemmTile {
  STAGED: boolean;
  TM: number;
  TN: number;
  WX: number;
  WY: number;
  BK: number;
}

/** The GEMM kernel of `spec`; its offsets of a, b, bias and c are the kernel API's (u.off_a, ...). */
export function gemmKernel<U extends UniformFields>(spec: { name: string; source: string; uniforms: U; strided?: string[] }): KernelDef<U> {
  return defineKernel({
    ...spec,
    workgroupSize: [16, 16],
    inputs: { a: 'f32', b: 'f32', bias: { type: 'f32', dtype: 'f32', optional: true } },
    outputs: { c: 'f32' },
  });
}
