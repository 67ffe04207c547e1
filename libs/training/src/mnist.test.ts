import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { buildModel } from './build.js';
import { createOptimizer } from './optimizer.js';
import { Rng } from './prng.js';
import { readMnist, slice } from './testing/helpers.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

/** A seeded permutation of [0, n). */
function permutation(n: number, seed: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  const rng = new Rng(seed, 1);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

function gatherRows(images: Float32Array, labels: Int32Array, per: number, idx: Int32Array) {
  const x = new Float32Array(idx.length * per);
  const y = new Int32Array(idx.length);
  idx.forEach((r, i) => {
    x.set(images.subarray(r * per, (r + 1) * per), i * per);
    y[i] = labels[r];
  });
  return { x, y, n: idx.length };
}

describe('MNIST', () => {
  const train = readMnist('train');
  const test = readMnist('t10k');

  it('MLP 784-256-128-10 with Adam reaches ≥ 97 % test accuracy', async () => {
    const model = await buildModel({ kind: 'mlp', inputShape: [784], hidden: [256, 128], numClasses: 10 });
    const params = model.init(1);
    const opt = createOptimizer({ kind: 'adam', lr: 1e-3, schedule: { kind: 'warmup-cosine', warmupRounds: 50, totalRounds: 1400, minLrRatio: 0.05 } }, model.paramCount);
    const bs = 128;
    let round = 0;
    for (let epoch = 0; epoch < 3; epoch++) {
      const perm = permutation(train.n, epoch);
      for (let b = 0; b + bs <= train.n; b += bs) {
        const batch = gatherRows(train.images, train.labels, 784, perm.subarray(b, b + bs));
        const { grad } = model.step(params, batch);
        opt.step(params, grad, round++);
      }
    }
    let correct = 0;
    for (let b = 0; b < test.n; b += 1000) correct += model.evaluate(params, slice(test.images, test.labels, 784, b, 1000)).correct!;
    const acc = correct / test.n;
    console.log(`MLP MNIST test accuracy ${(acc * 100).toFixed(2)} % after ${round} steps`);
    expect(acc).toBeGreaterThanOrEqual(0.97);
  });

  it('CNN, one epoch of a 2048-image subset: training loss falls by half', async () => {
    const model = await buildModel({ kind: 'cnn', inputShape: [28, 28, 1], convs: [{ filters: 8 }, { filters: 16 }], dense: [64], numClasses: 10 });
    const params = model.init(2);
    const opt = createOptimizer({ kind: 'adam', lr: 2e-3 }, model.paramCount);
    const first = model.evaluate(params, slice(train.images, train.labels, 784, 0, 2048)).loss;
    let round = 0;
    for (let b = 0; b < 2048; b += 64) {
      const { grad } = model.step(params, slice(train.images, train.labels, 784, b, 64));
      opt.step(params, grad, round++);
    }
    const last = model.evaluate(params, slice(train.images, train.labels, 784, 0, 2048)).loss;
    console.log(`CNN MNIST subset loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
    expect(last).toBeLessThan(first / 2);
  });
});
