/**
 * Deterministic randomness in pure integer JS (Math.imul, shifts): the same seed gives the
 * same bytes on every machine and backend. No tf.random, no transcendental functions (their
 * last bit may differ between platforms).
 */

/** splitmix32-style mixer: a well spread 32-bit hash of (a, b). */
export function mix32(a: number, b: number): number {
  let z = (a ^ Math.imul(b + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** xoshiro128** seeded through mix32; `next()` returns a uint32. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number, stream = 0) {
    const base = mix32(seed >>> 0, stream >>> 0);
    this.s0 = mix32(base, 1) | 1;
    this.s1 = mix32(base, 2);
    this.s2 = mix32(base, 3);
    this.s3 = mix32(base, 4);
  }

  next(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** Uniform in [0, 1) with 24 bits (exactly representable in float32). */
  uniform(): number {
    return (this.next() >>> 8) / 16777216;
  }

  /** Uniform in [-limit, limit). */
  symmetric(limit: number): number {
    return (this.uniform() * 2 - 1) * limit;
  }

  /** Integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Fills `out` uniformly in [-limit, limit). */
export function fillUniform(out: Float32Array, limit: number, rng: Rng): void {
  for (let i = 0; i < out.length; i++) out[i] = rng.symmetric(limit);
}
