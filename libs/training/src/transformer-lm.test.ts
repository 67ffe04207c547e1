import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { buildModel } from './build.js';
import { createOptimizer } from './optimizer.js';
import { Rng } from './prng.js';

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
});
