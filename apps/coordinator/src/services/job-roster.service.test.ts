import { describe, expect, it } from 'vitest';
import { proportionalShares } from './job-roster.service.js';

describe('proportionalShares', () => {
  it('splits a total in integer parts proportional to the weights, each at least 1', () => {
    expect(proportionalShares([1, 1, 2], 100)).toEqual([25, 25, 50]);
    expect(proportionalShares([1000, 1], 10).reduce((a, b) => a + b)).toBe(10);
    expect(Math.min(...proportionalShares([1000, 1], 10))).toBeGreaterThanOrEqual(1);
  });
});
