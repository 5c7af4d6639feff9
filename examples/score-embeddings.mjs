// Scoring embeddings exported from PyTorch: a safetensors file holding SimSiam's predictor outputs p and
// projector outputs z of V views of B images ([V, B, D], as `safetensors.torch.save_file({"p": p, "z": z},
// path)` writes them) gets HVP's score for every pair of views of every image, on the GPU, and the
// hardest pair per image. Prints one JSON line: the pairs, the scores [B, pairs] and the hardest pair's index.
//   node examples/score-embeddings.mjs <file.safetensors> [p name] [z name]
import { readFile } from 'node:fs/promises';
import { Engine, io } from 'hvp-webgpu';
import { pairCombinations, scoreSimSiam, selectCombination } from 'hvp-webgpu/hvp';

const [path, pName = 'p', zName = 'z'] = process.argv.slice(2);
if (!path) {
  console.error('usage: node examples/score-embeddings.mjs <file.safetensors> [p name] [z name]');
  process.exit(2);
}
const { tensors } = io.readSafetensors(await readFile(path), { source: path });
for (const name of [pName, zName]) {
  const t = tensors.get(name);
  if (!t || t.shape.length !== 3) throw new Error(`${path}: expected a [V, B, D] tensor '${name}', found ${t ? `shape [${t.shape}]` : `only ${[...tensors.keys()].join(', ')}`}`);
}
const engine = await Engine.create();
const out = await engine.scopeAsync(async () => {
  const { [pName]: p, [zName]: z } = io.uploadTensors(engine, [[pName, tensors.get(pName)], [zName, tensors.get(zName)]]);
  const pairs = pairCombinations(p.shape[0]);
  const scores = scoreSimSiam(p, z, pairs);
  const { choice } = selectCombination(scores, 'hardest');
  const flat = await scores.toArray();
  const rows = Array.from({ length: scores.shape[0] }, (_, b) => [...flat.subarray(b * pairs.length, (b + 1) * pairs.length)]);
  return { pairs, scores: rows, hardest: [...(await choice.toArray())] };
});
console.log(JSON.stringify(out));
engine.destroy();
