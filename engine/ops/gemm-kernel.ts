// The register-tiled GEMM's declaration, shared by matmul and conv2d (both include snippets/gemm.wgsl):
// C = A · B (+ bias) with bindings a, b, an optional bias and c, declared once per tile configuration
// (the workgroup size follows the tile), each made on first use.

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

export function gemmKernels<U extends UniformFields>(spec: { name: string; source: string; uniforms: U; strided?: string[] }): (tile: GemmTile) => KernelDef<U> {
  const byTile = new Map<string, KernelDef<U>>();
  return (tile) => {
    const key = `${tile.STAGED}|${tile.TM}|${tile.TN}|${tile.WX}|${tile.WY}|${tile.BK}`;
    let def = byTile.get(key);
    if (!def) {
      def = defineKernel({
        ...spec,
        workgroupSize: [tile.WX, tile.WY],
        inputs: { a: 'f32', b: 'f32', bias: { type: 'f32', dtype: 'f32', optional: true } },
        outputs: { c: 'f32' },
        defines: { ...tile },
      });
      byTile.set(key, def);
    }
    return def;
  };
}
