// A pair-selection criterion of one's own, written as a WGSL kernel through the public kernel API and
// used in an HVP step in place of the method's loss: of the candidate pairs of views of each image,
// train on the pair whose crops overlap least (score = 1 - IoU of the two crop boxes, hardest = highest).
// Prints one JSON line: per sample, the pair the step chose, its crops' IoU and the least IoU of any
// candidate pair (a plain CPU loop), and the step's loss.
//   node examples/least-overlap.mjs
import { Engine, Rng, defineKernel } from 'hvp-webgpu';
import { DEFAULTS, createMethod, hvpStep, packBatch, validateConfig } from 'hvp-webgpu/hvp';

// boxes[v·B + b] = (top, left, height, width) of view v of image b; pairs[r] = the two views of row r.
const overlapScore = defineKernel({
  name: 'least_overlap_score',
  source: /* wgsl */ `
#include "grid"
@compute @workgroup_size(WG_X)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = flat_index(gid);
  if (k >= u.batch * u.rows) { return; }
  let b = k / u.rows;
  let pair = pairs[k % u.rows];
  let p = boxes[u32(pair.x) * u.batch + b];
  let q = boxes[u32(pair.y) * u.batch + b];
  let h = max(0.0, min(p.x + p.z, q.x + q.z) - max(p.x, q.x));
  let w = max(0.0, min(p.y + p.w, q.y + q.w) - max(p.y, q.y));
  let inter = h * w;
  scores[k] = 1.0 - inter / (p.z * p.w + q.z * q.w - inter);
}`,
  workgroupSize: 64,
  uniforms: { batch: 'u32', rows: 'u32' },
  inputs: { boxes: 'vec4<f32>', pairs: 'vec2<i32>' },
  outputs: { scores: 'f32' },
});

/** The HVP step's scorer: [B, rows] scores from the views' crop parameters (the rendered views are not read). */
function leastOverlap({ engine, rows, params, batchSize }) {
  const boxes = engine.tensor(params[0].flatMap((v) => [v.crop.i, v.crop.j, v.crop.h, v.crop.w]), [params[0].length, 4]);
  const pairs = engine.tensor(rows.flat(), [rows.length, 2], { dtype: 'i32' });
  const scores = engine.empty([batchSize, rows.length]);
  overlapScore.launch({
    inputs: [boxes, pairs],
    outputs: [scores],
    uniforms: { batch: batchSize, rows: rows.length },
    grid: { invocations: batchSize * rows.length }, // split over a 2-D grid; row_width is filled
  });
  boxes.dispose();
  pairs.dispose();
  return scores;
}

function iou(a, b) {
  const h = Math.max(0, Math.min(a.i + a.h, b.i + b.h) - Math.max(a.i, b.i));
  const w = Math.max(0, Math.min(a.j + a.w, b.j + b.w) - Math.max(a.j, b.j));
  return (h * w) / (a.h * a.w + b.h * b.w - h * w);
}

const engine = await Engine.create();
const config = validateConfig({
  ...DEFAULTS,
  method: 'simsiam', arch: 'resnet18', widths: [4, 4, 8, 8], smallImage: true,
  size: 16, batchSize: 4, views: 4, select: 'hardest', dim: 16, predDim: 8,
});
const method = createMethod({ engine, config, channels: 3, stepsPerEpoch: 1, totalSteps: 1, rng: new Rng(0) });
const rng = new Rng(1);
const images = Array.from({ length: config.batchSize }, (_, i) => ({
  pixels: Uint8Array.from({ length: 3 * 32 * 32 }, () => rng.int(256)), height: 32, width: 32, label: i,
}));
const batch = packBatch(images, images.map((_, i) => i));
const result = await engine.scopeAsync(async () => {
  const r = await hvpStep({ engine, method, config, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], scorer: leastOverlap }, batch, { step: 0, epoch: 0, totalSteps: 1 });
  return { loss: await r.loss.item(), choice: [...(await r.choice.toArray())], rows: r.rows, params: r.params[0] };
});
const B = config.batchSize;
// Per sample, the crop IoU of the chosen pair and the least IoU of any candidate pair (a CPU loop).
const overlaps = Array.from({ length: B }, (_, b) => result.rows.map(([p, q]) => iou(result.params[p * B + b].crop, result.params[q * B + b].crop)));
const chosenIou = result.choice.map((r, b) => overlaps[b][r]);
const leastIou = overlaps.map((o) => Math.min(...o));
console.log(JSON.stringify({ pairs: result.rows.length, chosen: result.choice.map((r) => result.rows[r]), chosenIou, leastIou, loss: result.loss }));
engine.destroy();
