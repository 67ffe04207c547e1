import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { actPoolGradOp, actPoolSimdActive, gemmSimdActive, installHeapKernels, setActPoolSimd } from './heap-kernels.js';

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

describe('GradpoolGemm (gemm-simd.wat)', () => {
  // [M, K, N]: partial row blocks and column strips, one column, and (transposed, M·K ≥ 2^17,
  // N ≥ 256) the case that packs A too.
  it.each([
    [[6, 12, 9], false],
    [[7, 9, 6], true],
    [[13, 17, 1], false],
    [[1, 4, 3], true],
    [[130, 300, 20], false],
    [[520, 256, 260], true],
  ] as [[number, number, number], boolean][])('%j aT %s: the same bytes as tf.matMul, and with bias + ReLU', ([m, k, n], aT) => {
    expect(gemmSimdActive()).toBe(true);
    tf.tidy(() => {
      // ReLU'd operands: zeros (and exact-zero products) as in real activations.
      const a = tf.relu(tf.randomUniform(aT ? [k, m] : [m, k], -1, 2, 'float32', 3));
      const b = tf.mul(tf.randomUniform([k, n], -1, 1, 'float32', 4), tf.randomUniform([k, n], 0, 100, 'float32', 5));
      const bias = tf.randomUniform([n], -1, 1, 'float32', 6);
      const ref = tf.matMul(aT ? tf.transpose(a) : a, b);
      const own = tf.engine().runKernel('GradpoolGemm', { a, b }, { aT, relu: false }) as tf.Tensor;
      expect(bytes(own).equals(bytes(ref))).toBe(true);
      const ownAct = tf.engine().runKernel('GradpoolGemm', { a, b, bias }, { aT, relu: true }) as tf.Tensor;
      expect(bytes(ownAct).equals(bytes(tf.relu(tf.add(ref, bias))))).toBe(true);
      expect((ownAct.dataSync() as Float32Array).some((v) => v === 0)).toBe(true);
    });
  });
});
