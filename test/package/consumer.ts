// A TypeScript consumer of the installed package, type-checked with `tsc --strict` against the shipped
// declarations (test/package.test.ts); never run. Every entry point and the types a researcher writes
// against: tensors and autograd, a kernel declaration whose uniforms are checked, a scorer, a config.
import { Engine, Rng, defineKernel, ops, type KernelDef, type Tensor } from 'hvp-webgpu';
import { ResNet, resnet18 } from 'hvp-webgpu/models';
import { DEFAULTS, createMethod, hvpStep, packBatch, validateConfig, type Scorer, type StepResult, type TrainConfig } from 'hvp-webgpu/hvp';

const scale = defineKernel({
  name: 'typed_scale',
  source: '#include "grid"\n@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n  let i = flat_index(gid);\n  if (i < u.n) { out[i] = u.a * x[i]; }\n}',
  workgroupSize: 64,
  uniforms: { n: 'u32', a: 'f32', row_width: 'u32' },
  inputs: { x: 'f32' },
  outputs: { out: 'f32' },
});
const typed: KernelDef<{ n: 'u32'; a: 'f32'; row_width: 'u32' }> = scale;

export async function run(): Promise<number> {
  const engine: Engine = await Engine.create();
  const x: Tensor = engine.tensor([1, -2, 3], [3], { requiresGrad: true });
  const y = ops.sum(ops.mul(x, x));
  engine.backward(y);
  const grad: Float32Array | Int32Array = await x.grad!.toArray();

  const out = engine.empty([3]);
  const g = typed.grid(3);
  typed.launch({ inputs: [x], outputs: [out], uniforms: { n: 3, a: 2, row_width: g.rowWidth }, workgroups: g.workgroups });
  // @ts-expect-error a uniform the kernel does not declare
  typed.launch({ inputs: [x], outputs: [out], uniforms: { n: 3, a: 2, row_width: g.rowWidth, extra: 1 }, workgroups: g.workgroups });

  const net: ResNet = resnet18(engine, { smallImage: true, widths: [4, 4, 8, 8] }, new Rng(0));
  const config: TrainConfig = validateConfig({ ...DEFAULTS, method: 'simsiam', size: 12, batchSize: 2, views: 3 });
  const method = createMethod({ engine, config, channels: 3, stepsPerEpoch: 1, totalSteps: 1, rng: new Rng(1) });
  const scorer: Scorer = ({ engine: e, rows, batchSize }) => e.zeros([batchSize, rows.length]);
  const batch = packBatch([{ pixels: new Uint8Array(3 * 16 * 16), height: 16, width: 16, label: 0 }], [0]);
  const step: StepResult = await hvpStep({ engine, method, config, mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2], scorer }, batch, { step: 0, epoch: 0, totalSteps: 1 });
  return grad[0] + (await step.loss.item()) + net.parameters().length;
}
