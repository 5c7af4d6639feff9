// In-place parameter updates, one thread per element: SGD (optionally with momentum), LARS, AdamW, the EMA
// of a teacher network, and the gradient scaling of clip_grad_norm. The target `dst` (parameter,
// teacher or gradient) and the optimizer state (`state1`: SGD's momentum buffer or Adam's exp_avg;
// `state2`: Adam's exp_avg_sq) are outputs; every per-step scalar (lr, weight decay, bias corrections,
// momentum) comes through the uniform block, so schedules change nothing but its bytes.

#include "grid"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = flat_index(gid);
  if (i >= u.n) { return; }
  let ti = u.off_dst + i;
#if ${SGD}
  // torch.optim.SGD with dampening 0: d = g + wd·p; buf = μ·buf + d; p -= lr·(nesterov ? d + μ·buf : buf).
  // A zero-initialised buffer makes the first step's buf = d, as PyTorch's clone does.
  let p = dst[ti];
  var d = src[u.off_src + i] + u.weight_decay * p;
#if ${STATE1}
  let buf = u.momentum * state1[i] + d;
  state1[i] = buf;
  d = select(buf, d + u.momentum * buf, u.nesterov != 0u);
#endif
  dst[ti] = p - u.lr * d;
#elif ${LARS}
  // LARS (DINO's and the reference's utils.LARS): d = (g + wd·p)·q with q the trust ratio that
  // lars-trust.wgsl left in trust[0]; mu = μ·mu + d; p -= lr·mu.
  let p = dst[ti];
  let d = (src[u.off_src + i] + u.weight_decay * p) * trust[0];
  let mu = u.momentum * state1[i] + d;
  state1[i] = mu;
  dst[ti] = p - u.lr * mu;
#elif ${ADAMW}
  // torch.optim.AdamW: decoupled decay, then the bias-corrected Adam step.
  let g = src[u.off_src + i];
  let m = u.beta1 * state1[i] + (1.0 - u.beta1) * g;
  let v = u.beta2 * state2[i] + (1.0 - u.beta2) * g * g;
  state1[i] = m;
  state2[i] = v;
  let p = dst[ti] * (1.0 - u.lr * u.weight_decay);
  dst[ti] = p - u.step_size * m / (sqrt(v) * u.bc2_rsqrt + u.eps);
#elif ${EMA}
  // Teacher ← m·teacher + (1 − m)·student.
  dst[ti] = u.momentum * dst[ti] + (1.0 - u.momentum) * src[u.off_src + i];
#else
  // Gradient scaling by a factor computed on the GPU (no readback).
  dst[ti] = dst[ti] * src[u.off_src + u.src_index];
#endif
}
