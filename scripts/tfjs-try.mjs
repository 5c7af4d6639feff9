import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
globalThis.navigator = { gpu, userAgent: 'node' };
const tf = await import('@tensorflow/tfjs-core');
await import('@tensorflow/tfjs-backend-webgpu');
await tf.setBackend('webgpu');
await tf.ready();
console.log(tf.getBackend());
const a = tf.randomNormal([1024, 1024]); const b = tf.randomNormal([1024, 1024]);
for (let r = 0; r < 4; r++) {
  const t0 = performance.now();
  const c = tf.matMul(a, b);
  await c.data();
  console.log('ms', performance.now() - t0);
  c.dispose();
}
process.exit(0);
