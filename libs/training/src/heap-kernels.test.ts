import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { actPoolGradOp, actPoolSimdActive, installHeapKernels, setActPoolSimd } from './heap-kernels.js';

beforeAll(async () => {
  await selectBackend('wasm');
  installHeapKernels();
});

afterEach(() => setActPoolSimd(true));

const bytes = (t: tf.Tensor) => Buffer.from((t.dataSync() as Float32Array).slice().buffer);

describe('act/pool backward in WebAssembly SIMD (act-pool-simd.wat)', () => {
  it.each([
    [[3, 6, 8, 8], false, true],
    [[3, 6, 8, 8], true, true],
    [[2, 4, 6, 32], false, true],
    [[2, 4, 6, 32], true, false],
  ] as [number[], boolean, boolean][])('%j planar %s relu %s: the same bytes as the JS loop', (shape, planar, relu) => {
    expect(actPoolSimdActive()).toBe(true);
    tf.tidy(() => {
      // Quantised values: exact ties inside pooling windows, zeros, and negatives (no ReLU).
      const x = tf.div(tf.round(tf.mul(tf.randomUniform(shape, -1, 1, 'float32', 7), 3)), 3);
      const z = relu ? tf.relu(x) : x;
      const y = tf.maxPool(z as tf.Tensor4D, 2, 2, 'valid');
      const dy = tf.randomUniform(y.shape, -1, 1, 'float32', 8);
      const [dzSimd, dbSimd] = actPoolGradOp(dy, z, y, 2, relu, planar);
      setActPoolSimd(false);
      const [dzJs, dbJs] = actPoolGradOp(dy, z, y, 2, relu, planar);
      expect(bytes(dzSimd).equals(bytes(dzJs))).toBe(true);
      expect(bytes(dbSimd).equals(bytes(dbJs))).toBe(true);
      expect((dbJs.dataSync() as Float32Array).some((v) => v !== 0)).toBe(true);
    });
  });
});
