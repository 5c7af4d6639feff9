// GPU augmented views (docs/method.md §4): pipelines as data, torchvision-faithful parameter sampling, one-pass
// rendering, and the float64 reference the renderer is tested against.
export { viewPipeline, blurKernelSize, PIPELINE_NAMES, MAX_SIZE_WITHOUT_BLUR } from './pipelines.js';
export type { PipelineName, ViewPipeline, PipelineOptions, JitterSpec } from './pipelines.js';
export { sampleViewParams, sampleCrop, type ViewParams, type JitterParams } from './params.js';
export { uploadBatch, renderViews, type UploadedBatch } from './render.js';
export { renderViewsReference, gaussianKernel1d, type RenderOptions, type ReferenceViews } from './reference.js';
