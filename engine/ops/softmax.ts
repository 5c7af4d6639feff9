// Softmax and log-softmax along any axis (F.softmax / F.log_softmax), one row kernel each way
// (softmax.wgsl). The kernel walks the axis with a stride, so no axis needs a permute.

import type { Tensor } from '../engine.js';
import { record } from '../autograd.js';
import { normAxis, numel } from '../shape.js';
import { rowLayout } from './row-layout.js';
import { checkInputs } from './map.js';
import { contiguous } from './view.js';
import source from './softmax.wgsl';

/** One launch over x viewed as [outer, R, inner]; `g` makes it the backward (x is then the saved y). */
function launch(op: string, log: boolean, axis: number, x: Tensor, g?: Tensor): Tensor {
  const engine = x.engine;
  const out = engine.empty(x.shape);
  const outer = numel(x.shape.slice(0, axis));
  const r = x.shape[axis];
  const inner = numel(x.shape.slice(axis + 1));
  // Along an inner axis neighbouring rows are neighbouring addresses: a thread per row reads coalesced.
  const layout = rowLayout(engine, outer * inner, inner > 1 ? 1 : r);
  const [gx, gy] = layout.workgroups;
  engine.backend.dispatch({
    kernel: { name: op, source, defines: { ...layout.defines, LOG: log, BACKWARD: !!g } },
    inputs: g ? [x.buffer, g.buffer] : [x.buffer],
    outputs: [out.buffer],
    uniforms: new Uint32Array([outer, r, inner, gx, x.offset, g?.offset ?? 0, 0, 0]),
    workgroups: [gx, gy],
  });
  return out;
}

function rowOp(op: string, log: boolean, x: Tensor, axis: number): Tensor {
  const engine = checkInputs(op, [x]);
  if (x.dtype !== 'f32') throw new Error(`${op}: expects an f32 input, got ${x}`);
  const a = normAxis(op, axis, x.ndim);
  const src = engine.noGrad(() => contiguous(x));
  const y = launch(op, log, a, src);
  if (src !== x) src.dispose();
  return record(y, op, [x], (g) => [launch(`${op}_backward`, log, a, y, contiguous(g))]);
}

export function softmax(x: Tensor, axis = -1): Tensor {
  return rowOp('softmax', false, x, axis);
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return rowOp('log_softmax', true, x, axis);
}
