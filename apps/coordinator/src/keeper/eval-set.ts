/**
 * A validation or test split as one batch, and its evaluation: shared by the evaluation thread
 * (eval.worker.ts) and the keeper's inline fallback (job-keeper.ts).
 */
import { decodeShard } from '@gradpool/datasets';
import type { Model } from '@gradpool/training';

export interface EvalSet {
  /** count × dim float32 features. */
  x: Float32Array;
  y: Int32Array;
  count: number;
  dim: number;
}

/** Decodes and concatenates a split's shards (in the split's order). */
export function decodeEvalSet(shards: Uint8Array[]): EvalSet {
  const decoded = shards.map((b) => decodeShard(b));
  const count = decoded.reduce((a, sh) => a + sh.count, 0);
  const dim = decoded[0]?.dim ?? 0;
  if (decoded.some((sh) => sh.dim !== dim)) throw new Error('evaluation shards of different sample sizes');
  const x = new Float32Array(count * dim);
  const y = new Int32Array(count);
  let at = 0;
  for (const sh of decoded) {
    x.set(sh.features.subarray(0, sh.count * dim), at * dim);
    y.set(sh.labels.subarray(0, sh.count), at);
    at += sh.count;
  }
  return { x, y, count, dim };
}

/**
 * Σ loss and the number of correct predictions over the set, `batch` samples at a time (correct:
 * null where the model has no accuracy, e.g. mse). `between` runs after each batch (the keeper
 * yields to its event loop there).
 */
export async function evaluateSet(model: Model, params: Float32Array, set: EvalSet, batch: number, between?: () => Promise<void>): Promise<{ lossSum: number; correct: number | null }> {
  const { x, y, dim } = set;
  let lossSum = 0;
  let correct = 0;
  let hasAcc = true;
  for (let i = 0; i < set.count; i += batch) {
    const n = Math.min(batch, set.count - i);
    const r = model.evaluate(params, { x: x.subarray(i * dim, (i + n) * dim), y: y.subarray(i, i + n), n });
    lossSum += r.loss * n;
    if (r.correct !== undefined) correct += r.correct;
    else if (r.accuracy !== undefined) correct += r.accuracy * n;
    else hasAcc = false;
    await between?.();
  }
  return { lossSum, correct: hasAcc ? correct : null };
}
