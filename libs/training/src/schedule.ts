/**
 * Learning-rate schedules, as pure functions of the round. Only +, -, ×, ÷ on doubles (IEEE
 * exact), so every machine computes the same rate: the cosine is our own series, not Math.cos.
 */
import { z } from 'zod';

export const ScheduleSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant') }),
  z.strictObject({
    kind: z.literal('warmup-cosine'),
    /** Rounds of linear warm-up from lr/warmupRounds to lr. */
    warmupRounds: z.number().int().min(0),
    /** Round at which the cosine reaches minLr (and stays). */
    totalRounds: z.number().int().positive(),
    /** Final learning rate as a fraction of lr. */
    minLrRatio: z.number().min(0).max(1).default(0),
  }),
]);
export type Schedule = z.output<typeof ScheduleSchema>;

/** cos(πp) for p in [0, 1], by a Taylor series of sin around π/2 (error < 1e-14). */
export function cosPi(p: number): number {
  const y = Math.PI * (p - 0.5); // in [-π/2, π/2]; cos(πp) = -sin(y)
  const y2 = y * y;
  let term = y;
  let sum = y;
  for (let k = 1; k <= 10; k++) {
    term = (-term * y2) / ((2 * k) * (2 * k + 1));
    sum += term;
  }
  return -sum;
}

/** Learning rate of the update applied in `round` (0 = the first update). */
export function learningRate(baseLr: number, schedule: Schedule, round: number): number {
  if (schedule.kind === 'constant') return baseLr;
  const { warmupRounds, totalRounds, minLrRatio } = schedule;
  if (round < warmupRounds) return (baseLr * (round + 1)) / warmupRounds;
  const span = Math.max(1, totalRounds - warmupRounds);
  const p = Math.min(1, Math.max(0, (round - warmupRounds) / span));
  const min = baseLr * minLrRatio;
  return min + (baseLr - min) * 0.5 * (1 + cosPi(p));
}
