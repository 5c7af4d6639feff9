// Softmax and log-softmax along any axis (F.softmax / F.log_softmax), one row kernel each way
// (softmax.wgsl). The kernel walks the axis with a stride, so no axis needs a permute.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { normAxis, numel } from '../shape.js';
import { defineKernel } from '../kernel.js';
import { rowLayout } from './row-layout.js';
import { checkInputs } from './map.js';
import { contiguous } from './view.js';
import source from './softmax.wgsl';

const UNIFORMS = { outer: 'u32', r: 'u32', inner: 'u32' } as const;

function kernels(name: string, log: boolean) {
  const spec = { source, workgroupSize: 64, uniforms: UNIFORMS, outputs: { out: 'f32' }, defines: { LOG: log } } as const;
  return {
    forward: defineKernel({ ...spec, name, inputs: { x: 'f32' }, defines: { ...spec.defines, BACKWARD: false } }),
    backward: defineKernel({ ...spec, name: `${name}_backward`, inputs: { x: 'f32', g: 'f32' }, defines: { ...spec.defines, BACKWARD: true } }),
  };
}

const KERNELS = { softmax: kernels('softmax', false), log_softmax: kernels('log_softmax', true) };

/** One launch over x viewed as [outer, R, inner]; `g` makes it the backward (x is then the saved y). */
function launch(op: 'softmax' | 'log_softmax', axis: number, x: Tensor, g?: Tensor): Tensor {
  const engine = x.engine;
  const out = engine.empty(x.shape);
  const outer = numel(x.shape.slice(0, axis));
  const r = x.shape[axis];
  const inner = numel(x.shape.slice(axis + 1));
  // Along an inner axis neighbouring rows are neighbouring addresses: a thread per row reads coalesced.
  const layout = rowLayout(engine, outer * inner, inner > 1 ? 1 : r);
  const kernel = g ? KERNELS[op].backward : KERNELS[op].forward;
  kernel.launch({
    inputs: g ? [x, g] : [x],
    outputs: [out],
    uniforms: { outer, r, inner },
    workgroupSize: layout.wg,
    grid: { workgroups: layout.groups },
    defines: layout.defines,
    key: layout.key,
  });
  return out;
}

function rowOp(op: 'softmax' | 'log_softmax', x: Tensor, axis: number): Tensor {
  const engine = checkInputs(op, [x]);
  if (x.dtype !== 'f32') throw new Error(`${op}: expects an f32 input, got ${x}`);
  const a = normAxis(op, axis, x.ndim);
  const src = engine.noGrad(() => contiguous(x));
  const y = launch(op, a, src);
  if (src !== x) src.dispose();
  return record(y, op, [x], (g) => [launch(op, a, y, contiguous(g))]);
}

/** Softmax along `axis` (the last by default). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return rowOp('softmax', x, axis);
}

/** log(softmax(x)) along `axis`, computed stably. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return rowOp('log_softmax', x, axis);
}
