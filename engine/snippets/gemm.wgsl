// The register-tiled GEMM's bindings and tile constants, shared by matmul.wgsl and conv2d.wgsl:
// C = A · B (+ bias); each invocation accumulates a TM×TN block, a workgroup of WX×WY invocations a
// BM×BN tile. The bias binding exists only with BIAS, so the launcher numbers the output (OUT_BINDING).
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
#if ${BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
@group(0) @binding(${OUT_BINDING}) var<storage, read_write> c: array<f32>;

const TM = ${TM}u;
const TN = ${TN}u;
const WX = ${WX}u;
const WY = ${WY}u;
const BM = TM * WY;
const BN = TN * WX;
