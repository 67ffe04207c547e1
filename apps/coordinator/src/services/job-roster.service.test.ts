import { describe, expect, it } from 'vitest';
import { ADD_LOOKAHEAD, lookaheadRounds, proportionalShares } from './job-roster.service.js';

describe('lookaheadRounds', () => {
  it('leaves a second of rounds at the job pace, at least ADD_LOOKAHEAD − 1, at most 100', () => {
    expect(lookaheadRounds(undefined)).toBe(ADD_LOOKAHEAD - 1);
    expect(lookaheadRounds(2000)).toBe(ADD_LOOKAHEAD - 1);
    // The demo's MLP: ~70 ms a round; 2 rounds had left no margin.
    expect(lookaheadRounds(70)).toBe(15);
    expect(lookaheadRounds(0.5)).toBe(100);
    expect(lookaheadRounds(0)).toBe(ADD_LOOKAHEAD - 1);
  });
});

describe('proportionalShares', () => {
  it('splits a total in integer parts proportional to the weights, each at least 1', () => {
    expect(proportionalShares([1, 1, 2], 100)).toEqual([25, 25, 50]);
    expect(proportionalShares([1000, 1], 10).reduce((a, b) => a + b)).toBe(10);
    expect(Math.min(...proportionalShares([1000, 1], 10))).toBeGreaterThanOrEqual(1);
  });
});
