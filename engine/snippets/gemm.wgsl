// The register-tiled GEMM's tile constants, shared by matmul.wgsl and conv2d.wgsl: C = A · B (+ bias);
// each invocation accumulates a TM×TN block, a workgroup of WX×WY invocations a BM×BN tile. The
// bindings a, b, bias (optional) and c are declared by the launchers (engine/ops/matmul.ts, conv.ts).
const TM = ${TM}u;
const TN = ${TN}u;
const WX = ${WX}u;
const WY = ${WY}u;
const BM = TM * WY;
const BN = TN * WX;
