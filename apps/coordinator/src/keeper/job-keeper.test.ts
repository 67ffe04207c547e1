import { describe, expect, it } from 'vitest';
import { observedRoundsKept } from './job-keeper.js';

describe('observedRoundsKept', () => {
  it('keeps 64 rounds of a small model, 2 GiB of means of a large one, and never fewer than 4', () => {
    expect(observedRoundsKept(1_000_000)).toBe(64);
    expect(observedRoundsKept(8_388_608)).toBe(64); // 32 MiB a mean: exactly 2 GiB
    expect(observedRoundsKept(25_000_000)).toBe(21); // 100 MB a mean
    expect(observedRoundsKept(1_000_000_000)).toBe(4);
    expect(observedRoundsKept(0)).toBe(64);
  });
});
