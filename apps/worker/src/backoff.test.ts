import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, seededRandom } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles up to the cap, with jitter in [d/2, d]', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 10].map((a) => backoffDelay(a, () => 0))).toEqual([125, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    expect([0, 1, 2, 3, 4, 5, 6, 7, 10].map((a) => backoffDelay(a, () => 0.999999))).toEqual([
      250, 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000,
    ]);
  });

  it('gives a reproducible schedule for a seed, always within bounds', () => {
    const schedule = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 12 }, (_, a) => backoffDelay(a, random));
    };
    expect(schedule(7)).toEqual(schedule(7));
    expect(schedule(7)).not.toEqual(schedule(8));
    for (const [a, d] of schedule(7).entries()) {
      const ceiling = Math.min(DEFAULT_BACKOFF.capMs, DEFAULT_BACKOFF.baseMs * 2 ** a);
      expect(d).toBeGreaterThanOrEqual(ceiling / 2);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
  });

  it('spreads workers that reconnect at the same moment', () => {
    const delays = Array.from({ length: 50 }, (_, seed) => backoffDelay(6, seededRandom(seed)));
    expect(new Set(delays).size).toBeGreaterThan(40);
  });

  it('survives huge attempt numbers', () => {
    expect(backoffDelay(10_000, () => 0.5, { baseMs: 100, capMs: 3000 })).toBe(2250);
  });
});

describe('seededRandom', () => {
  it('returns floats in [0, 1)', () => {
    const r = seededRandom(123);
    for (let i = 0; i < 1000; i++) {
      const x = r();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });
});
