// The teacher's exponential moving average of the student (DINO, BYOL): t ← m·t + (1 − m)·s in place,
// one dispatch per tensor, no readback. The momentum usually follows a cosineSchedule.

import type { Tensor } from '../engine.js';
import { sameShape } from '../shape.js';
import { checkInputs } from '../ops/map.js';
import { dispatchUpdate } from './update.js';

/** teacher ← momentum · teacher + (1 − momentum) · student, tensor by tensor (DINO's teacher update). */
export function emaUpdate(teacher: Tensor[], student: Tensor[], momentum: number): void {
  if (teacher.length !== student.length) {
    throw new Error(`emaUpdate: ${teacher.length} teacher tensors for ${student.length} student tensors`);
  }
  teacher.forEach((t, i) => {
    const s = student[i];
    checkInputs('emaUpdate', [t, s]);
    if (!sameShape(t.shape, s.shape) || t.dtype !== 'f32' || s.dtype !== 'f32') {
      throw new Error(`emaUpdate: teacher ${t} and student ${s} must be f32 tensors of one shape`);
    }
    if (!t.isContiguous() || !s.isContiguous() || t.buffer === s.buffer) {
      throw new Error(`emaUpdate: teacher ${t} and student ${s} must be contiguous and not share storage`);
    }
    dispatchUpdate('ema', t, s, [], { momentum });
  });
}
