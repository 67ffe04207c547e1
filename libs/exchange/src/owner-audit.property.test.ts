/**
 * The owner audit's arithmetic (`judgeGather`) against an owner simulated with the exchange's
 * own clipping (clipping.ts) and summation (fp32: float64 sums in roster order, a float32 mean),
 * for any roster size, sample counts (zeros included) and norms spread over nine orders of
 * magnitude: an honest owner is never called a liar (a violation bans a volunteer for good),
 * and a lie (a contribution dropped, the mean moved) is named exactly when a brute-force search
 * over every bound an honest owner could have had finds none that explains it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clipFactors, contributionNorm } from './clipping.js';
import { CodecIds } from './codecs/codec.js';
import { Fp32Codec } from './codecs/fp32.codec.js';
import { decodeError, judgeGather } from './owner-audit.js';
import { gradient } from './testing/fixtures.js';

const codec = new Fp32Codec();
const scratch = { values: new Float32Array(0) };

interface Case {
  samples: number[];
  scales: number[];
  owner: number;
  length: number;
  ratio: number;
  seed: number;
}

const caseArb = fc
  .integer({ min: 2, max: 7 })
  .chain((k) =>
    fc.record({
      samples: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })), { minLength: k, maxLength: k }),
      scales: fc.array(fc.double({ min: -6, max: 3, noNaN: true }).map((e) => 10 ** e), { minLength: k, maxLength: k }),
      owner: fc.integer({ min: 0, max: k - 1 }),
      length: fc.integer({ min: 1, max: 64 }),
      ratio: fc.constantFrom(1, 1.5, 3, 10),
      seed: fc.integer({ min: 0, max: 1_000_000 }),
    }),
  )
  .filter((c) => c.samples.reduce((a, b) => a + b, 0) > 0);

/** What an honest owner gathers: the exchange's clipped, sample-weighted mean of every contribution. */
function honestGather(c: Case) {
  const xs = c.samples.map((_, j) => {
    const x = gradient(c.seed, j, 0, c.length);
    for (let i = 0; i < x.length; i++) x[i] *= c.scales[j];
    return x;
  });
  const norms = new Float64Array(xs.length).fill(-1);
  xs.forEach((x, j) => {
    if (c.samples[j] > 0) norms[j] = contributionNorm(codec, [{ payload: new Uint8Array(x.buffer), length: x.length }], scratch);
  });
  const clip = clipFactors(norms, c.ratio);
  const weights = c.samples.map((n, j) => n * (clip ? clip.factors[j] : 1));
  const acc = new Float64Array(c.length);
  xs.forEach((x, j) => codec.accumulate(new Uint8Array(x.buffer), x.length, acc, 0, weights[j]));
  const total = c.samples.reduce((a, b) => a + b, 0);
  const mean = Float32Array.from(acc, (v) => v / total);
  const others = xs.flatMap((x, j) => (j === c.owner ? [] : [{ samples: c.samples[j], x, norm: norms[j] }]));
  return { xs, weights, total, mean, others, bound: clip?.bound };
}

function judge(c: Case, mean: Float32Array, g: ReturnType<typeof honestGather>) {
  return judgeGather({
    mean,
    meanError: decodeError(CodecIds.fp32, 0, new Uint8Array(mean.buffer), mean.length, mean),
    total: g.total,
    ownerSamples: c.samples[c.owner],
    others: g.others,
    clipNormRatio: c.ratio,
  });
}

describe('judgeGather', () => {
  it('never calls an honest owner a liar, whatever the sample counts and norms', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const g = honestGather(c);
        const r = judge(c, g.mean, g);
        expect(r.verdict, `${r.reason} (residual ${r.residual}, allowed ${r.allowed})`).not.toBe('violation');
      }),
      { numRuns: 2000, seed: 1 },
    );
  });

  it('judges the case CI met: two members, the owner\'s own tiny norm sets the bound', () => {
    const c: Case = { samples: [20, 236], scales: [1e-5, 3e-3], owner: 0, length: 64, ratio: 3, seed: 5 };
    const g = honestGather(c);
    expect(g.weights[1]).toBeLessThan(0.1 * c.samples[1]);
    expect(judge(c, g.mean, g).verdict).toBe('ok');
  });

  it('names a lie exactly when no bound an honest owner could have had explains it (a brute-force search agrees)', () => {
    const seen = { violation: 0, ok: 0, close: 0 };
    fc.assert(
      fc.property(caseArb, fc.nat(), fc.double({ min: -4, max: 3, noNaN: true }), fc.boolean(), (c, pick, exponent, drop) => {
        const g = honestGather(c);
        // Where the honest gather cannot be judged (no norm bound), neither can a lie.
        fc.pre(judge(c, g.mean, g).verdict === 'ok');
        let lie: Float32Array;
        const withSamples = g.others.map((_, i) => i).filter((i) => g.others[i].samples > 0);
        if (drop && withSamples.length > 0) {
          // One contribution's share of the mean, as the owner weighted it, left out.
          const i = withSamples[pick % withSamples.length];
          const j = i >= c.owner ? i + 1 : i;
          lie = Float32Array.from(g.mean, (v, e) => v - (g.weights[j] * g.xs[j][e]) / g.total);
        } else {
          // The mean moved by 10^exponent of its own norm, in a direction of its own.
          const d = gradient(c.seed + 1, pick % 97, 1, c.length);
          const size = (10 ** exponent * norm(g.mean)) / norm(d);
          lie = Float32Array.from(g.mean, (v, e) => v + size * d[e]);
        }
        const verdict = judge(c, lie, g).verdict;
        const { gap, slack } = bruteForce(c, lie, g);
        if (gap > slack) expect(verdict, `gap ${gap}`).toBe('violation');
        if (gap < -slack) expect(verdict, `gap ${gap}`).toBe('ok');
        seen[gap > slack ? 'violation' : gap < -slack ? 'ok' : 'close']++;
      }),
      { numRuns: 600, seed: 2 },
    );
    // Both sides of the line were tried, not only lies too small or too large to tell apart.
    expect(seen.violation).toBeGreaterThan(100);
    expect(seen.ok).toBeGreaterThan(100);
  });
});

/**
 * The least ‖R(B)‖ − allowed(B) over a grid of 1 001 bounds across every bound the owner's own
 * norm could give (and the others' norms), computed directly; and how far the true least over
 * the whole range can be below it (the slope of R is at most Σ n_j + 1.1·n_owner).
 */
function bruteForce(c: Case, mean: Float32Array, g: ReturnType<typeof honestGather>): { gap: number; slack: number } {
  const n = c.samples[c.owner];
  const sorted = g.others.filter((o) => o.norm >= 0).map((o) => o.norm).sort((a, b) => a - b);
  const k = Math.floor(sorted.length / 2);
  const lo = c.ratio * (k === 0 ? 0 : sorted[k - 1]);
  const hi = c.ratio * sorted[k];
  const err = decodeError(CodecIds.fp32, 0, new Uint8Array(mean.buffer), mean.length, mean);
  const at = (B: number | null, cap: number) => {
    const r = Float64Array.from(mean, (v) => v * g.total);
    let scale = g.total * norm(mean);
    for (const o of g.others) {
      const w = o.samples * (B !== null && o.norm > B ? B / o.norm : 1);
      for (let e = 0; e < r.length; e++) r[e] -= w * o.x[e];
      scale += w * Math.max(o.norm, 0);
    }
    return norm(r) - (n * cap * 1.1 + 2 * g.total * err + 1e-9 * scale + 1e-30);
  };
  const grid = [...Array.from({ length: 1001 }, (_, i) => lo + ((hi - lo) * i) / 1000), ...sorted.filter((x) => x > lo && x < hi)];
  let gap = grid.reduce((m, B) => Math.min(m, at(B, B)), Infinity);
  if (n === 0) gap = at(sorted.length >= 2 && sorted[Math.floor((sorted.length - 1) / 2)] > 0 ? c.ratio * sorted[Math.floor((sorted.length - 1) / 2)] : null, 0);
  else if (lo === 0) gap = Math.min(gap, at(null, 0));
  const slope = g.others.reduce((a, o) => a + o.samples, 0) + 1.1 * n;
  return { gap, slack: (n === 0 ? 0 : (slope * (hi - lo)) / 1000) + 1e-6 * g.total * (norm(mean) + 1e-30) };
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}
