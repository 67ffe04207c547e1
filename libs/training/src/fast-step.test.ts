import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { buildModel } from './build.js';
import { setFastSteps } from './fast-step.js';
import { setGemmSimd } from './heap-kernels.js';
import { randomBatch } from './testing/helpers.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

afterEach(() => {
  setFastSteps(true);
  setGemmSimd(true);
});

const cases: [string, unknown, number, number][] = [
  ['mlp (relu, dropout)', { kind: 'mlp', inputShape: [12], hidden: [9, 7], dropout: 0.25, numClasses: 4 }, 12, 4],
  [
    'cnn (max pool on both convs, a first layer with 2 channels, dense relu, dropout)',
    { kind: 'cnn', inputShape: [8, 8, 2], convs: [{ filters: 5 }, { filters: 6, pool: 'max' }], dense: [7], dropout: 0.2, numClasses: 3 },
    128,
    3,
  ],
  ['cnn (no pooling, 5×5 kernels)', { kind: 'cnn', inputShape: [6, 6, 1], convs: [{ filters: 3, kernelSize: 5, pool: 'none' }, { filters: 2, kernelSize: 5, pool: 'none' }], numClasses: 2 }, 36, 2],
];

// With GradpoolGemm (sample-major dense stack, gemm-simd.wat) and without (feature-major, tf.matMul).
describe.each([true, false])('hand-written steps (fast-step.ts), SIMD gemm %s', (gemm) => {
  it.each(cases)('%s: same loss and gradient bytes as the taped step', async (_name, spec, xPer, classes) => {
    setGemmSimd(gemm);
    const model = await buildModel(spec);
    const params = model.init(5);
    const batch = randomBatch(6, xPer, classes, 3);
    const before = tf.memory().numTensors;
    const fast = model.step(params, batch, { seed: 9 });
    expect(tf.memory().numTensors).toBe(before);
    setFastSteps(false);
    const taped = model.step(params, batch, { seed: 9 });
    expect(fast.loss).toBe(taped.loss);
    expect(Buffer.from(fast.grad.buffer).equals(Buffer.from(taped.grad.buffer))).toBe(true);
    expect(fast.grad.some((g) => g !== 0)).toBe(true);
    model.dispose();
  });
});
