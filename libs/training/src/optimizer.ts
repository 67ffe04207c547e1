/**
 * Optimizers over flat Float32Arrays, in plain JS (no tf ops): the workers and the keeper apply
 * the same averaged gradient with this code and get the same bytes. Arithmetic is done in
 * doubles with a fixed order and rounded to float32 on store; only +, -, ×, ÷ and Math.sqrt
 * (all correctly rounded by IEEE 754) are used.
 */
import { z } from 'zod';
import { learningRate, ScheduleSchema } from './schedule.js';

export const OptimizerConfigSchema = z.strictObject({
  /** sgd; momentum (heavy ball); nesterov; adam (L2 weight decay into the gradient); adamw (decoupled). */
  kind: z.enum(['sgd', 'momentum', 'nesterov', 'adam', 'adamw']),
  lr: z.number().positive(),
  momentum: z.number().min(0).lt(1).default(0.9),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  eps: z.number().positive().default(1e-8),
  /** L2 coefficient (sgd, momentum, nesterov, adam: added to the gradient; adamw: decoupled). */
  weightDecay: z.number().min(0).default(0),
  /** Clip the gradient to this global L2 norm before the update; absent: no clipping. */
  clipNorm: z.number().positive().optional(),
  schedule: ScheduleSchema.default({ kind: 'constant' }),
});
export type OptimizerConfig = z.output<typeof OptimizerConfigSchema>;
export type OptimizerConfigInput = z.input<typeof OptimizerConfigSchema>;

export class OptimizerConfigError extends Error {
  override name = 'OptimizerConfigError';
}

export interface StepInfo {
  /** Learning rate used. */
  lr: number;
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  /** Factor the gradient was scaled by (1 unless clipped). */
  clipScale: number;
}

export interface Optimizer {
  readonly config: OptimizerConfig;
  /**
   * Applies one update in place. `round` counts the updates applied before this one (0 for the
   * first); it drives the schedule and Adam's bias correction, so a restarted optimizer
   * continues exactly given the same round. `grad` is not modified.
   */
  step(params: Float32Array, grad: Float32Array, round: number): StepInfo;
  /** The state vectors (live), each of length P: [] for sgd, [velocity], or Adam's [m, v]. */
  state(): Float32Array[];
  /** Replaces the state by copies of `state` (as returned by state()). */
  load(state: readonly Float32Array[]): void;
}

/** Global L2 norm, summed in index order in doubles. */
export function globalNorm(g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** b^t for a non-negative integer t, by squaring (no Math.pow). */
export function powInt(b: number, t: number): number {
  let r = 1;
  let x = b;
  let e = t;
  while (e > 0) {
    if (e & 1) r *= x;
    x *= x;
    e = Math.floor(e / 2);
  }
  return r;
}

export function createOptimizer(config: OptimizerConfigInput, paramCount: number): Optimizer {
  const parsed = OptimizerConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new OptimizerConfigError(`invalid optimizer config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const c = parsed.data;
  const nState = c.kind === 'sgd' ? 0 : c.kind === 'adam' || c.kind === 'adamw' ? 2 : 1;
  let st: Float32Array[] = Array.from({ length: nState }, () => new Float32Array(paramCount));

  return {
    config: c,
    state: () => st,
    load(state) {
      if (state.length !== nState || state.some((s) => s.length !== paramCount)) {
        throw new OptimizerConfigError(`optimizer state must be ${nState} vectors of ${paramCount}`);
      }
      st = state.map((s) => Float32Array.from(s));
    },
    step(p, g, round) {
      if (p.length !== paramCount || g.length !== paramCount) {
        throw new OptimizerConfigError(`expected ${paramCount} parameters and gradients, got ${p.length} and ${g.length}`);
      }
      const lr = learningRate(c.lr, c.schedule, round);
      const gradNorm = globalNorm(g);
      const clipScale = c.clipNorm !== undefined && gradNorm > c.clipNorm ? c.clipNorm / gradNorm : 1;
      const wd = c.weightDecay;
      const n = p.length;
      switch (c.kind) {
        case 'sgd':
          for (let i = 0; i < n; i++) p[i] = p[i] - lr * (g[i] * clipScale + wd * p[i]);
          break;
        case 'momentum':
        case 'nesterov': {
          const v = st[0];
          const mu = c.momentum;
          const nesterov = c.kind === 'nesterov';
          for (let i = 0; i < n; i++) {
            const gi = g[i] * clipScale + wd * p[i];
            const vi = (v[i] = mu * v[i] + gi);
            p[i] = p[i] - lr * (nesterov ? gi + mu * vi : vi);
          }
          break;
        }
        case 'adam':
        case 'adamw': {
          const [m, v] = st;
          const { beta1: b1, beta2: b2, eps } = c;
          const t = round + 1;
          const bc1 = 1 - powInt(b1, t);
          const bc2 = 1 - powInt(b2, t);
          const decoupled = c.kind === 'adamw';
          for (let i = 0; i < n; i++) {
            let pi = p[i];
            let gi = g[i] * clipScale;
            if (decoupled) pi = pi - lr * wd * pi;
            else gi = gi + wd * pi;
            const mi = (m[i] = b1 * m[i] + (1 - b1) * gi);
            const vi = (v[i] = b2 * v[i] + (1 - b2) * gi * gi);
            p[i] = pi - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
          }
          break;
        }
      }
      return { lr, gradNorm, clipScale };
    },
  };
}
