import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { buildModel } from './build.js';
import { createOptimizer } from './optimizer.js';
import { Rng } from './prng.js';
import { randomBatch } from './testing/helpers.js';
import { setTransformerFastStep, transformerFastStepActive } from './transformer-fast.js';
import * as tf from '@tensorflow/tfjs';

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('transformer-lm', () => {
  it('loss falls on a small text that ships with the repo', async () => {
    const text = readFileSync(new URL('../fixtures/gettysburg.txt', import.meta.url), 'utf8');
    const chars = [...new Set(text)].sort();
    const ids = Int32Array.from(text, (c) => chars.indexOf(c));
    const T = 32;
    const n = 16;
    const model = await buildModel({ kind: 'transformer-lm', vocabSize: chars.length, contextLength: T, dModel: 48, heads: 4, layers: 2, mlpRatio: 2 });
    const params = model.init(1);
    const opt = createOptimizer({ kind: 'adamw', lr: 3e-3, weightDecay: 0.01, clipNorm: 1, schedule: { kind: 'warmup-cosine', warmupRounds: 10, totalRounds: 120 } }, model.paramCount);
    const rng = new Rng(5);
    const batch = () => {
      const x = new Int32Array(n * T);
      const y = new Int32Array(n * T);
      for (let s = 0; s < n; s++) {
        const start = rng.below(ids.length - T - 1);
        x.set(ids.subarray(start, start + T), s * T);
        y.set(ids.subarray(start + 1, start + T + 1), s * T);
      }
      return { x, y, n };
    };
    const losses: number[] = [];
    for (let r = 0; r < 120; r++) {
      const { grad, loss } = model.step(params, batch());
      losses.push(loss);
      opt.step(params, grad, r);
    }
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
    console.log(`transformer-lm loss ${first.toFixed(3)} → ${last.toFixed(3)} (vocab ${chars.length})`);
    expect(first).toBeGreaterThan(Math.log(chars.length) - 0.5);
    expect(last).toBeLessThan(first * 0.7);
  });

  it('the hand-written step (transformer-fast.ts) gives the taped gradient to float32 rounding', async () => {
    expect(transformerFastStepActive()).toBe(true);
    for (const [spec, n, seed] of [
      [{ kind: 'transformer-lm', vocabSize: 7, contextLength: 5, dModel: 8, heads: 2, layers: 2, mlpRatio: 2 }, 3, 1],
      [{ kind: 'transformer-lm', vocabSize: 13, contextLength: 9, dModel: 12, heads: 3, layers: 1, mlpRatio: 1 }, 2, 2],
    ] as const) {
      const model = await buildModel(spec);
      const params = model.init(seed);
      for (let i = 0; i < params.length; i++) params[i] += ((i * 7919) % 13) / 26 - 0.25;
      const batch = randomBatch(n, spec.contextLength, spec.vocabSize, seed, true);
      const fast = model.step(params, batch);
      setTransformerFastStep(false);
      let taped;
      try {
        taped = model.step(params, batch);
      } finally {
        setTransformerFastStep(true);
      }
      expect(fast.loss).toBeCloseTo(taped.loss, 5);
      let num = 0;
      let den = 0;
      for (let i = 0; i < fast.grad.length; i++) {
        num += (fast.grad[i] - taped.grad[i]) ** 2;
        den += taped.grad[i] ** 2;
      }
      expect(Math.sqrt(num / den)).toBeLessThan(1e-5);
      // The same bytes on a second call (nothing left over from the first in the step's memory).
      expect(Buffer.from(model.step(params, batch).grad.buffer).equals(Buffer.from(fast.grad.buffer))).toBe(true);
    }
  });

  it('token ids out of range go to the taped path; steps leave no tensors behind', async () => {
    const spec = { kind: 'transformer-lm', vocabSize: 7, contextLength: 5, dModel: 8, heads: 2, layers: 1, mlpRatio: 2 };
    const model = await buildModel(spec);
    const params = model.init(3);
    const batch = randomBatch(2, 5, 7, 3, true);
    model.step(params, batch);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) model.step(params, batch);
    expect(tf.memory().numTensors).toBe(before);
    const bad = { ...batch, x: Int32Array.from(batch.x, (v, i) => (i === 0 ? 7 : v)) };
    expect(Number.isFinite(model.step(params, bad).loss)).toBe(true);
  });
});
