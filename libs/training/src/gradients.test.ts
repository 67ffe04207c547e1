import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { buildModel } from './build.js';
import { ShapeError } from './model.js';
import { gradCheck, randomBatch } from './testing/helpers.js';
import { setTransformerFastStep } from './transformer-fast.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

const cases: [string, unknown, () => ReturnType<typeof randomBatch>, number?][] = [
  ['mlp (tanh)', { kind: 'mlp', inputShape: [6], hidden: [5, 4], activation: 'tanh', numClasses: 3 }, () => randomBatch(4, 6, 3, 1)],
  ['mlp (mse)', { kind: 'mlp', inputShape: [2, 3], hidden: [5], activation: 'sigmoid', numClasses: 2, loss: 'mse' }, () => ({ ...randomBatch(4, 6, 3, 2), y: Float32Array.from([0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8]) })],
  [
    'cnn (max pool)',
    { kind: 'cnn', inputShape: [6, 6, 2], convs: [{ filters: 3, kernelSize: 3, pool: 'max' }, { filters: 2, kernelSize: 2, pool: 'none' }], dense: [4], activation: 'tanh', numClasses: 3 },
    () => randomBatch(3, 72, 3, 3),
    // Small steps: a larger one moves some pooling windows' maximum.
    2e-3,
  ],
  ['cnn (avg pool)', { kind: 'cnn', inputShape: [4, 4, 1], convs: [{ filters: 2, kernelSize: 3, pool: 'avg' }], activation: 'tanh', numClasses: 2 }, () => randomBatch(3, 16, 2, 4)],
  ['mlp (relu, fused)', { kind: 'mlp', inputShape: [6], hidden: [7, 5], numClasses: 3 }, () => randomBatch(4, 6, 3, 7), 1e-3],
  [
    'cnn (relu, max pool; im2col and conv filter gradients)',
    { kind: 'cnn', inputShape: [6, 6, 2], convs: [{ filters: 5, kernelSize: 3, pool: 'max' }, { filters: 3, kernelSize: 3, pool: 'none' }], dense: [4], numClasses: 3 },
    () => randomBatch(3, 72, 3, 8),
    1e-3,
  ],
  [
    // The mnist cnn's shape: max pooling after both convs (the second, Ci > 4, through the NHWC
    // mask/routing kernel and the flipped-kernel input gradient; C % 4 == 0: the SIMD kernel).
    'cnn (relu, max pool on two layers)',
    { kind: 'cnn', inputShape: [8, 8, 1], convs: [{ filters: 8, kernelSize: 3, pool: 'max' }, { filters: 4, kernelSize: 3, pool: 'max' }], dense: [4], numClasses: 3 },
    () => randomBatch(3, 64, 3, 10),
    1e-3,
  ],
  ['cnn (relu, avg pool, even kernel)', { kind: 'cnn', inputShape: [4, 4, 6], convs: [{ filters: 2, kernelSize: 2, pool: 'avg' }], numClasses: 2 }, () => randomBatch(3, 96, 2, 9), 1e-3],
  ['transformer-lm', { kind: 'transformer-lm', vocabSize: 7, contextLength: 5, dModel: 8, heads: 2, layers: 2, mlpRatio: 2 }, () => randomBatch(2, 5, 7, 5, true)],
];

describe('gradients match central finite differences', () => {
  it.each(cases)('%s', async (_name, spec, batch, eps) => {
    const model = await buildModel(spec);
    const params = model.init(11);
    // Larger weights than the init so that every path carries signal.
    for (let i = 0; i < params.length; i++) params[i] += ((i * 7919) % 13) / 26 - 0.25;
    const { rel, pairs } = gradCheck(model, params, batch(), 40, eps);
    expect(rel, JSON.stringify(pairs.slice(0, 12))).toBeLessThan(2e-2);
  });

  it('transformer-lm through the tape (the hand-written step off)', async () => {
    const model = await buildModel({ kind: 'transformer-lm', vocabSize: 7, contextLength: 5, dModel: 8, heads: 2, layers: 2, mlpRatio: 2 });
    const params = model.init(11);
    for (let i = 0; i < params.length; i++) params[i] += ((i * 7919) % 13) / 26 - 0.25;
    setTransformerFastStep(false);
    try {
      const { rel, pairs } = gradCheck(model, params, randomBatch(2, 5, 7, 5, true), 40);
      expect(rel, JSON.stringify(pairs.slice(0, 12))).toBeLessThan(2e-2);
    } finally {
      setTransformerFastStep(true);
    }
  });

  it('keras topology', async () => {
    const m = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [5, 5, 1], filters: 2, kernelSize: 3, activation: 'tanh' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    const topology = m.toJSON(undefined, false) as Record<string, unknown>;
    m.dispose();
    const model = await buildModel({ kind: 'keras', topology });
    const params = model.init(3);
    const { rel, pairs } = gradCheck(model, params, randomBatch(3, 25, 3, 6), 20);
    expect(rel, JSON.stringify(pairs.slice(0, 12))).toBeLessThan(2e-2);
    model.dispose();
  });
});

describe('the pure-JS cpu backend', () => {
  it('cnn (relu, max pool, dense relu): heap kernels on cpu match finite differences and wasm', async () => {
    const spec = { kind: 'cnn', inputShape: [6, 6, 2], convs: [{ filters: 4, kernelSize: 3, pool: 'max' }, { filters: 3, kernelSize: 3, pool: 'none' }], dense: [4], numClasses: 3 };
    const model = await buildModel(spec);
    const params = model.init(11);
    for (let i = 0; i < params.length; i++) params[i] += ((i * 7919) % 13) / 26 - 0.25;
    const batch = randomBatch(3, 72, 3, 8);
    const onWasm = model.step(params, batch).grad;
    await selectBackend('cpu');
    try {
      const { rel, pairs } = gradCheck(model, params, batch, 40, 1e-3);
      expect(rel, JSON.stringify(pairs.slice(0, 12))).toBeLessThan(2e-2);
      const onCpu = model.step(params, batch).grad;
      let num = 0;
      let den = 0;
      for (let i = 0; i < onCpu.length; i++) {
        num += (onCpu[i] - onWasm[i]) ** 2;
        den += onWasm[i] ** 2;
      }
      expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
    } finally {
      await selectBackend('wasm');
    }
  });
});

describe('input validation', () => {
  it('rejects labels out of range and batches of the wrong size', async () => {
    const model = await buildModel({ kind: 'mlp', inputShape: [3], hidden: [], numClasses: 2 });
    const p = model.init(1);
    expect(() => model.step(p, { x: new Float32Array(6), y: Int32Array.from([0, 2]), n: 2 })).toThrow(ShapeError);
    expect(() => model.step(p, { x: new Float32Array(5), y: Int32Array.from([0, 1]), n: 2 })).toThrow(ShapeError);
    expect(() => model.step(new Float32Array(3), { x: new Float32Array(6), y: Int32Array.from([0, 1]), n: 2 })).toThrow(ShapeError);
  });
});

describe('memory', () => {
  it('step, evaluate and predict leave no tensors behind', async () => {
    const model = await buildModel({ kind: 'cnn', inputShape: [8, 8, 1], convs: [{ filters: 2 }], dense: [4], dropout: 0.2, numClasses: 3 });
    const params = model.init(1);
    const batch = randomBatch(4, 64, 3, 1);
    model.step(params, batch);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      model.step(params, batch, { seed: i });
      model.evaluate(params, batch);
      model.predict(params, batch.x, batch.n);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
