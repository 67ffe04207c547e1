/**
 * Child process of determinism.test.ts: builds the models, trains N steps on seeded batches
 * with an optimizer, and prints one line of JSON { name: paramHash } on stdout.
 * Usage: node dist/testing/determinism-child.js [steps]
 */
import { selectBackend } from '../backend.js';
import { buildModel } from '../build.js';
import { paramHash } from '../checkpoint.js';
import { createOptimizer } from '../optimizer.js';
import { randomBatch } from './helpers.js';

export const DETERMINISM_CASES: { name: string; spec: unknown; xPer: number; classes: number; tokens?: boolean }[] = [
  { name: 'mlp', spec: { kind: 'mlp', inputShape: [20], hidden: [16, 8], dropout: 0.3, numClasses: 4 }, xPer: 20, classes: 4 },
  { name: 'cnn', spec: { kind: 'cnn', inputShape: [8, 8, 1], convs: [{ filters: 4 }], dense: [8], numClasses: 3 }, xPer: 64, classes: 3 },
  { name: 'transformer-lm', spec: { kind: 'transformer-lm', vocabSize: 11, contextLength: 6, dModel: 8, heads: 2, layers: 1 }, xPer: 6, classes: 11, tokens: true },
];

/** Trains each case `steps` steps and returns the parameter hashes. */
export async function runDeterminism(steps: number): Promise<Record<string, string>> {
  await selectBackend('wasm');
  const out: Record<string, string> = {};
  for (const c of DETERMINISM_CASES) {
    const model = await buildModel(c.spec);
    const params = model.init(1234);
    const opt = createOptimizer({ kind: 'adamw', lr: 1e-2, weightDecay: 0.01, clipNorm: 1, schedule: { kind: 'warmup-cosine', warmupRounds: 2, totalRounds: steps } }, model.paramCount);
    for (let r = 0; r < steps; r++) {
      const { grad } = model.step(params, randomBatch(8, c.xPer, c.classes, r, c.tokens), { seed: r });
      opt.step(params, grad, r);
    }
    out[c.name] = paramHash(params);
  }
  return out;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  const steps = Number(process.argv[2] ?? 5);
  process.stdout.write(JSON.stringify(await runDeterminism(steps)) + '\n');
}
