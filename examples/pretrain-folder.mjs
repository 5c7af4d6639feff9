// Pretraining on one's own images: a folder of class subfolders (<dir>/<class>/<image>.jpg|png, or
// <dir>/train/<class>/...) as torchvision's ImageFolder reads it, SimSiam with HVP on a small ResNet-18
// for one epoch, the checkpoint written to <out>. Prints one JSON line: images, classes, steps, the
// losses, the checkpoint's path and the step it records.
//   node examples/pretrain-folder.mjs <image folder> <out dir> [epochs]
import { Engine } from 'hvp-webgpu';
import { DEFAULTS, openDataset, pretrain, readCheckpointMeta, validateConfig } from 'hvp-webgpu/hvp';

const [dir, out, epochs = '1'] = process.argv.slice(2);
if (!dir || !out) {
  console.error('usage: node examples/pretrain-folder.mjs <image folder> <out dir> [epochs]');
  process.exit(2);
}
const config = validateConfig({
  ...DEFAULTS,
  method: 'simsiam', arch: 'resnet18', widths: [8, 8, 16, 16], smallImage: true, dim: 32, predDim: 16,
  dataset: 'folder', data: dir, loadSize: 40, size: 32,
  epochs: Number(epochs), batchSize: 4, views: 3, select: 'hardest', out,
});
const engine = await Engine.create();
const data = await openDataset({ kind: 'folder', dir, split: 'train', loadSize: config.loadSize });
const run = await pretrain(config, { engine, dataset: data, progress: false });
const meta = await readCheckpointMeta(run.checkpoint);
console.log(JSON.stringify({ images: data.length, classes: data.classes, steps: run.steps, losses: run.losses, checkpoint: run.checkpoint, checkpointStep: meta.step }));
engine.destroy();
