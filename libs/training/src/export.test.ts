import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { buildModel, loadExportedModel } from './build.js';
import { randomBatch } from './testing/helpers.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

function expectClose(a: Float32Array, b: Float32Array) {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  expect(worst).toBeLessThan(1e-4);
}

const specs: [string, unknown, number][] = [
  ['mlp', { kind: 'mlp', inputShape: [28, 28, 1], hidden: [16], dropout: 0.5, activation: 'tanh', numClasses: 10 }, 784],
  ['cnn', { kind: 'cnn', inputShape: [8, 8, 3], convs: [{ filters: 4, pool: 'max' }, { filters: 4, kernelSize: 2, pool: 'avg' }], dense: [8], numClasses: 5 }, 192],
];

describe('export', () => {
  it.each(specs)('%s: tf.loadLayersModel reads it back with the same predictions', async (_n, spec, per) => {
    const model = await buildModel(spec);
    const params = model.init(9);
    const x = randomBatch(4, per, 2, 1).x as Float32Array;
    const artifacts = await model.export(params);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    const shape = (loaded.inputs[0].shape.slice(1) as number[]);
    const got = tf.tidy(() => (loaded.predict(tf.tensor(x, [4, ...shape])) as tf.Tensor).dataSync() as Float32Array);
    expectClose(got, model.predict(params, x, 4));
    loaded.dispose();
  });

  it('keras spec round-trips', async () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 5, activation: 'relu' }), tf.layers.dense({ units: 3, activation: 'softmax' })] });
    const topology = m.toJSON(undefined, false) as Record<string, unknown>;
    m.dispose();
    const model = await buildModel({ kind: 'keras', topology });
    const params = model.init(2);
    const x = randomBatch(3, 6, 2, 2).x as Float32Array;
    const loaded = await loadExportedModel(await model.export(params));
    expectClose(loaded.predict(x, 3), model.predict(params, x, 3));
    loaded.dispose();
    model.dispose();
  });

  it('transformer-lm: the documented loader predicts the same logits', async () => {
    const model = await buildModel({ kind: 'transformer-lm', vocabSize: 9, contextLength: 4, dModel: 8, heads: 2, layers: 1 });
    const params = model.init(3);
    const x = randomBatch(2, 4, 9, 3, true).x;
    const artifacts = await model.export(params);
    expect(artifacts.format).toBe('gradpool-transformer-lm');
    const loaded = await loadExportedModel(artifacts);
    expectClose(loaded.predict(x, 2), model.predict(params, x, 2));
  });
});
