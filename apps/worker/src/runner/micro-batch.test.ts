import { buildModel, selectBackend } from '@gradpool/training';
import { beforeAll, describe, expect, it } from 'vitest';
import { MicroBatcher } from './micro-batch.js';

describe('MicroBatcher', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('splits a batch into steps that fit the budget and weights their gradients into the batch gradient', async () => {
    const model = await buildModel({ kind: 'mlp', inputShape: [6], hidden: [5], numClasses: 3 });
    const params = model.init(1);
    const n = 10;
    const x = Float32Array.from({ length: n * 6 }, (_, i) => Math.sin(i));
    const y = Int32Array.from({ length: n }, (_, i) => i % 3);
    const whole = model.step(params, { x, y, n });
    // A zero budget forces one sample per step (after the first step of `firstSize`).
    const mb = new MicroBatcher({ budgetMs: 0, firstSize: 3 });
    const seeds: number[] = [];
    const split = await mb.step(model, params, { x, y, n }, (k) => (seeds.push(k), k));
    expect(seeds).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(split.samples).toBe(n);
    expect(split.loss).toBeCloseTo(whole.loss, 5);
    let worst = 0;
    for (let i = 0; i < whole.grad.length; i++) worst = Math.max(worst, Math.abs(split.grad[i] - whole.grad[i]));
    expect(worst).toBeLessThan(1e-5);
    // A generous budget keeps the batch whole: the very same gradient.
    const one = await new MicroBatcher({ budgetMs: 1e9, firstSize: n }).step(model, params, { x, y, n }, () => 0);
    expect(one.grad).toEqual(whole.grad);
    model.dispose();
  });
});
