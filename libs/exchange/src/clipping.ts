/**
 * Robust aggregation's arithmetic (`RoundExchangeOptions.clipNormRatio`): the L2 norm of one
 * contribution to a shard, and the factors that scale contributions down to the bound. Both are
 * float64 in a fixed order, so that any owner computes the same factors from the same bytes.
 */
import type { Codec } from './codecs/codec.js';

/** A reusable decode buffer (grown as needed). */
export interface NormScratch {
  values: Float32Array;
}

/**
 * √Σ v² over a contribution's chunks, chunk by chunk in order: the codec's own `sumSquares`
 * where it has one (int8), else over the decoded values.
 */
export function contributionNorm(codec: Codec, chunks: readonly { payload: Uint8Array; length: number }[], scratch: NormScratch): number {
  let ss = 0;
  for (const { payload, length } of chunks) {
    if (codec.sumSquares) {
      ss += codec.sumSquares(payload, length);
      continue;
    }
    if (scratch.values.length < length) scratch.values = new Float32Array(length);
    const v = scratch.values.subarray(0, length);
    codec.decode(payload, length, v, 0);
    for (let i = 0; i < length; i++) ss += v[i] * v[i];
  }
  return Math.sqrt(ss);
}

/**
 * Scale factors for `norms` (one per contributor; negative: not a contributor with samples):
 * min(1, bound / norm), bound = `ratio` × the lower median of the non-negative norms. Null when
 * nothing is scaled (fewer than two norms, a zero median, or every norm within the bound).
 */
export function clipFactors(norms: Float64Array, ratio: number): { factors: Float64Array; bound: number } | null {
  const bound = clipBound(norms, ratio);
  if (bound === null || !norms.some((x) => x > bound)) return null;
  const factors = new Float64Array(norms.length).fill(1);
  for (let j = 0; j < norms.length; j++) if (norms[j] > bound) factors[j] = bound / norms[j];
  return { factors, bound };
}

/**
 * The bound `clipFactors` scales to: `ratio` × the lower median of the non-negative norms, or
 * null when there is none (fewer than two norms, or a zero median: nothing is scaled).
 */
export function clipBound(norms: ArrayLike<number>, ratio: number): number | null {
  const sorted = Array.from(norms)
    .filter((x) => x >= 0)
    .sort((a, b) => a - b);
  if (sorted.length < 2) return null;
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return median > 0 ? ratio * median : null;
}
