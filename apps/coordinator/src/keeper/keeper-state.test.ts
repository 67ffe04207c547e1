import { encodeCheckpoint, paramHash } from '@gradpool/training';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KeeperState } from './keeper-state.js';

// The thread runs the built worker (npm test builds before it tests).
const WORKER = new URL('../../dist/keeper/keeper-state.worker.js', import.meta.url);

function vector(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 0.1;
  });
}

describe('KeeperState', () => {
  it.runIf(existsSync(fileURLToPath(WORKER)))('in its thread gives the same bytes as inline: steps, hashes, checkpoints', async () => {
    const P = 10_001;
    const optimizer = { kind: 'adam', lr: 1e-3 } as const;
    const start = encodeCheckpoint({ params: vector(P, 1), optimizerState: [vector(P, 2).map(Math.abs), vector(P, 3).map(Math.abs)], round: 4 });
    const inline = await KeeperState.open(optimizer, { checkpoint: start }, new URL('file:///nonexistent/worker.js'));
    const thread = await KeeperState.open(optimizer, { checkpoint: start }, WORKER);
    try {
      expect(thread.paramCount).toBe(P);
      expect(await thread.hash()).toBe(await inline.hash());
      for (let r = 4; r < 7; r++) {
        const mean = vector(P, 100 + r);
        const before = mean.slice();
        const [a, b] = [await inline.step(mean, r), await thread.step(mean, r)];
        expect(b).toEqual(a);
        expect(mean).toEqual(before); // the mean is not modified (the keeper publishes it afterwards)
      }
      const [ca, cb] = [await inline.checkpoint(7, { k: 1 }), await thread.checkpoint(7, { k: 1 })];
      expect(Buffer.from(cb.bytes).equals(Buffer.from(ca.bytes))).toBe(true);
      expect(cb.hash).toBe(paramHash(await thread.params()));
    } finally {
      await thread.close();
      await inline.close();
    }
    // A closed state refuses work with an error instead of hanging.
    await expect(thread.hash()).rejects.toThrow(/closed|exited/);
  });
});
