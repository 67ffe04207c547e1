import { encodeShard } from '@gradpool/datasets';
import { buildModel, selectBackend } from '@gradpool/training';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EvalThread } from './eval-thread.js';

// The thread runs the built worker (npm test builds before it tests).
const WORKER = new URL('../../dist/keeper/eval.worker.js', import.meta.url);

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

describe('EvalThread', () => {
  it.runIf(existsSync(fileURLToPath(WORKER)))('keeps a split it decoded once: later evaluations send only the parameters', async () => {
    const spec = { kind: 'mlp', inputShape: [6], hidden: [5], numClasses: 3 } as const;
    await selectBackend('cpu');
    const model = await buildModel(spec);
    const params = model.init(3);
    // Two shards of a split: 7 + 4 samples.
    const x = rand(11 * 6, 5);
    const y = Int32Array.from({ length: 11 }, (_, i) => i % 3);
    const shards = [encodeShard({ count: 7, shape: [6], normalisation: 'none' }, x.subarray(0, 42), y.subarray(0, 7)), encodeShard({ count: 4, shape: [6], normalisation: 'none' }, x.subarray(42), y.subarray(7))];
    const expected = model.evaluate(params, { x, y, n: 11 });
    const thread = EvalThread.start(WORKER)!;
    try {
      const ask = (key: string, withShards: boolean) =>
        thread.evaluate({ specJson: JSON.stringify(spec), params: params.slice().buffer, data: withShards ? { key, shards: shards.map((s) => s.slice().buffer) } : { key }, batch: 4 });
      // Never sent: the thread asks for it.
      expect((await ask('ds-1/validation', false)).missingData).toBe(true);
      const first = await ask('ds-1/validation', true);
      const again = await ask('ds-1/validation', false);
      for (const r of [first, again]) {
        expect(r.missingData).toBeUndefined();
        expect(r.samples).toBe(11);
        expect(r.lossSum! / 11).toBeCloseTo(expected.loss, 5);
        expect(r.correct! / 11).toBeCloseTo(expected.accuracy!, 6);
      }
      expect(again).toEqual({ ...first, id: again.id });
      // Another key is another set.
      expect((await ask('ds-1/test', false)).missingData).toBe(true);
    } finally {
      await thread.close();
    }
  });
});
