// The peer: TensorFlow.js's WebGPU backend on the same Dawn adapter as our engine.

import type * as tfType from '@tensorflow/tfjs-core';
import type { GpuClock } from '../timing.js';

export type Tf = typeof tfType;

export interface TfjsPeer {
  tf: Tf;
  /** Submit tfjs's pending commands and wait for the GPU. */
  done: () => Promise<void>;
  /** Timestamp timing of tfjs's device, when it was created with `timestamp-query`. */
  clock: GpuClock | null;
}

/** The parts of tfjs's WebGPUBackend the bench drives (its own submission points). */
interface WebGpuBackend {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export async function createTfjsPeer(gpu: GPU): Promise<TfjsPeer> {
  // tfjs looks for navigator.gpu; Node 20 has no navigator, so give it the Dawn instance we already use.
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
  else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  const tf = (await import('@tensorflow/tfjs-core')) as Tf;
  // tfjs-core's gradients live in a side-effect module that the full @tensorflow/tfjs bundle imports.
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialise');
  await tf.ready();
  // tfjs submits every 15 dispatches by default (to keep a browser responsive); one submission per run,
  // as our engine makes, keeps a composed op (attention, its gradients) inside the timestamp bracket.
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 1 << 30);
  const backend = tf.backend() as unknown as WebGpuBackend;
  let submits = 0;
  const submitQueue = backend.submitQueue.bind(backend);
  backend.submitQueue = () => {
    submits++;
    submitQueue();
  };
  const flush = () => {
    backend.endComputePassEncoder();
    if (backend.commandEncoder) backend.submitQueue();
  };
  return {
    tf,
    done: async () => {
      flush();
      await backend.device.queue.onSubmittedWorkDone();
    },
    clock: backend.device.features.has('timestamp-query') ? { device: backend.device, flush, submits: () => submits } : null,
  };
}
