/**
 * Gradient of a member's batch in micro-batches, so that one round's compute does not hold the
 * event loop (the agent's heartbeats, the exchange's NATS traffic) for longer than a budget:
 * the gradient of the mean loss over n samples is Σ_k (n_k / n) · grad_k over micro-batches k.
 * The member's own gradient is not bit-compared with anyone's (only the averaged mean is), so
 * the split may follow this machine's speed.
 */
import type { Batch, Model, StepResult } from '@gradpool/training';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export interface MicroBatcherOptions {
  /** Longest synchronous step, in milliseconds (default 250). */
  budgetMs?: number;
  /** Samples of the first step before any timing is known (default 32). */
  firstSize?: number;
}

export class MicroBatcher {
  /** Estimated milliseconds per sample (exponential average), null before the first step. */
  private msPerSample: number | null = null;
  private readonly budgetMs: number;
  private readonly firstSize: number;

  constructor(opts: MicroBatcherOptions = {}) {
    this.budgetMs = opts.budgetMs ?? 250;
    this.firstSize = opts.firstSize ?? 32;
  }

  /** Samples per step that fit the budget. */
  size(): number {
    if (this.msPerSample === null) return this.firstSize;
    return Math.max(1, Math.floor(this.budgetMs / this.msPerSample));
  }

  /**
   * model.step over `batch` in micro-batches (one when it fits the budget), yielding to the
   * event loop between them; `seed(k)` seeds micro-batch k's dropout.
   */
  async step(model: Model, params: Float32Array, batch: Batch, seed: (k: number) => number, signal?: AbortSignal): Promise<StepResult> {
    const n = batch.n;
    const xPer = batch.x.length / n;
    const yPer = batch.y.length / n;
    let grad: Float32Array | null = null;
    let loss = 0;
    let k = 0;
    for (let at = 0; at < n; k++) {
      if (k > 0) {
        await yieldToLoop();
        signal?.throwIfAborted();
      }
      const m = Math.min(this.size(), n - at);
      const part: Batch = { x: batch.x.subarray(at * xPer, (at + m) * xPer), y: batch.y.subarray(at * yPer, (at + m) * yPer), n: m };
      const t0 = performance.now();
      const r = model.step(params, part, { seed: seed(k) });
      this.observe((performance.now() - t0) / m);
      const w = m / n;
      if (m === n) {
        grad = r.grad;
      } else {
        grad ??= new Float32Array(r.grad.length);
        for (let i = 0; i < grad.length; i++) grad[i] += w * r.grad[i];
      }
      loss += w * r.loss;
      at += m;
    }
    return { grad: grad!, loss, samples: n };
  }

  private observe(ms: number): void {
    this.msPerSample = this.msPerSample === null ? ms : 0.7 * this.msPerSample + 0.3 * ms;
  }
}
