// The peer: TensorFlow.js's WebGPU backend on the same Dawn adapter as our engine.

import type * as tfType from '@tensorflow/tfjs-core';

export type Tf = typeof tfType;

export interface TfjsPeer {
  tf: Tf;
  /** Submit tfjs's pending commands and wait for the GPU. */
  done: () => Promise<void>;
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
  const backend = tf.backend() as unknown as { endComputePassEncoder(): void; submitQueue(): void; device: GPUDevice };
  return {
    tf,
    done: async () => {
      backend.endComputePassEncoder();
      backend.submitQueue();
      await backend.device.queue.onSubmittedWorkDone();
    },
  };
}
