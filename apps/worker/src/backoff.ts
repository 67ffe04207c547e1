/** Reconnection delays: exponential with jitter, so that many workers do not reconnect in step. */

export interface BackoffOptions {
  /** Delay ceiling before jitter of the first retry, ms. */
  baseMs: number;
  /** Largest delay, ms. */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, capMs: 10_000 };

/**
 * Delay before retry number `attempt` (0-based): "equal jitter", uniformly in
 * [d/2, d] with d = min(cap, base·2^attempt). Never 0, never above the cap.
 * `random` returns values in [0, 1) (injected so tests are deterministic).
 */
export function backoffDelay(attempt: number, random: () => number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
