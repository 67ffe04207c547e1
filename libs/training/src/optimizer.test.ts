import { describe, expect, it } from 'vitest';
import { createOptimizer, globalNorm, type OptimizerConfigInput } from './optimizer.js';
import { Rng } from './prng.js';
import { cosPi, learningRate } from './schedule.js';

/** Straightforward reference implementations over plain number arrays (float64). */
function reference(c: Required<Pick<OptimizerConfigInput, 'kind' | 'lr'>> & Partial<OptimizerConfigInput>, p0: number[], grads: number[][]) {
  const mu = c.momentum ?? 0.9;
  const [b1, b2, eps] = [c.beta1 ?? 0.9, c.beta2 ?? 0.999, c.eps ?? 1e-8];
  const wd = c.weightDecay ?? 0;
  const p = [...p0];
  const v = p.map(() => 0);
  const m = p.map(() => 0);
  const s = p.map(() => 0);
  grads.forEach((g0, r) => {
    const lr = learningRate(c.lr, (c.schedule ?? { kind: 'constant' }) as never, r);
    const norm = Math.sqrt(g0.reduce((a, x) => a + x * x, 0));
    const scale = c.clipNorm !== undefined && norm > c.clipNorm ? c.clipNorm / norm : 1;
    for (let i = 0; i < p.length; i++) {
      let g = g0[i] * scale;
      if (c.kind !== 'adamw') g += wd * p[i];
      if (c.kind === 'sgd') p[i] -= lr * g;
      else if (c.kind === 'momentum') {
        v[i] = mu * v[i] + g;
        p[i] -= lr * v[i];
      } else if (c.kind === 'nesterov') {
        v[i] = mu * v[i] + g;
        p[i] -= lr * (g + mu * v[i]);
      } else {
        if (c.kind === 'adamw') p[i] -= lr * wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        s[i] = b2 * s[i] + (1 - b2) * g * g;
        const mh = m[i] / (1 - b1 ** (r + 1));
        const sh = s[i] / (1 - b2 ** (r + 1));
        p[i] -= (lr * mh) / (Math.sqrt(sh) + eps);
      }
    }
  });
  return p;
}

const configs: OptimizerConfigInput[] = [
  { kind: 'sgd', lr: 0.1 },
  { kind: 'sgd', lr: 0.1, weightDecay: 0.01, clipNorm: 0.5 },
  { kind: 'momentum', lr: 0.05, momentum: 0.8 },
  { kind: 'nesterov', lr: 0.05, weightDecay: 1e-3 },
  { kind: 'adam', lr: 0.01 },
  { kind: 'adam', lr: 0.01, weightDecay: 0.01, clipNorm: 1 },
  { kind: 'adamw', lr: 0.01, weightDecay: 0.1, schedule: { kind: 'warmup-cosine', warmupRounds: 2, totalRounds: 6 } },
];

describe('optimizers match a reference over several steps', () => {
  it.each(configs)('%j', (config) => {
    const P = 50;
    const rng = new Rng(3);
    const p0 = Array.from({ length: P }, () => rng.symmetric(1));
    const grads = Array.from({ length: 8 }, () => Array.from({ length: P }, () => rng.symmetric(1)));
    const opt = createOptimizer(config, P);
    const p = Float32Array.from(p0);
    grads.forEach((g, r) => opt.step(p, Float32Array.from(g), r));
    const want = reference(opt.config as never, p0, grads.map((g) => Array.from(Float32Array.from(g))));
    for (let i = 0; i < P; i++) expect(p[i]).toBeCloseTo(want[i], 5);
  });

  it('state round-trips: a restored optimizer continues with identical bytes', () => {
    const P = 20;
    const rng = new Rng(4);
    const grads = Array.from({ length: 6 }, () => Float32Array.from({ length: P }, () => rng.symmetric(1)));
    const a = createOptimizer({ kind: 'adamw', lr: 0.01, weightDecay: 0.1 }, P);
    const pa = new Float32Array(P).fill(0.5);
    grads.slice(0, 3).forEach((g, r) => a.step(pa, g, r));
    const b = createOptimizer({ kind: 'adamw', lr: 0.01, weightDecay: 0.1 }, P);
    b.load(a.state().map((s) => s.slice()));
    const pb = pa.slice();
    grads.slice(3).forEach((g, r) => {
      a.step(pa, g, r + 3);
      b.step(pb, g, r + 3);
    });
    expect(Buffer.from(pb.buffer).equals(Buffer.from(pa.buffer))).toBe(true);
  });

  it('clips by global norm and reports it', () => {
    const opt = createOptimizer({ kind: 'sgd', lr: 1, clipNorm: 1 }, 2);
    const p = new Float32Array(2);
    const info = opt.step(p, Float32Array.from([3, 4]), 0);
    expect(info.gradNorm).toBe(5);
    expect(Array.from(p)).toEqual([Math.fround(-0.6), Math.fround(-0.8)]);
    expect(globalNorm(Float32Array.from([3, 4]))).toBe(5);
  });

  it('rejects bad configs naming the field', () => {
    expect(() => createOptimizer({ kind: 'adam', lr: -1 }, 3)).toThrow(/lr/);
  });
});

describe('schedules', () => {
  it('cosPi matches Math.cos closely', () => {
    for (let p = 0; p <= 1; p += 0.01) expect(Math.abs(cosPi(p) - Math.cos(Math.PI * p))).toBeLessThan(1e-13);
  });

  it('warms up linearly then decays by a cosine to minLr', () => {
    const s = { kind: 'warmup-cosine', warmupRounds: 10, totalRounds: 110, minLrRatio: 0.1 } as const;
    expect(learningRate(1, s, 0)).toBeCloseTo(0.1);
    expect(learningRate(1, s, 9)).toBeCloseTo(1);
    expect(learningRate(1, s, 10)).toBeCloseTo(1);
    expect(learningRate(1, s, 60)).toBeCloseTo(0.55);
    expect(learningRate(1, s, 110)).toBeCloseTo(0.1);
    expect(learningRate(1, s, 500)).toBeCloseTo(0.1);
  });
});
