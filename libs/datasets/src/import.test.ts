import { describe, expect, it } from 'vitest';
import { DatasetFormatError } from './errors.js';
import { parseCsv } from './formats/csv.js';
import { ImportResult, importDataset, ShardSink } from './import.js';
import { importMnist } from './mnist.js';
import { createRng } from './rng.js';
import { decodeShard, sha256Hex } from './shard.codec.js';

/** An in-memory sink (the object store has its own tests against a real nats-server). */
function memorySink(): ShardSink & { objects: Map<string, Uint8Array> } {
  const objects = new Map<string, Uint8Array>();
  return {
    objects,
    put: async (bytes) => {
      const sha256 = sha256Hex(bytes);
      const stored = !objects.has(sha256);
      objects.set(sha256, bytes);
      return { sha256, stored };
    },
  };
}

/** A CSV with `n` rows: feature x = row index, y = 2·row + noise, label by x mod 3. */
function csv(n: number, seed = 1): string {
  const rng = createRng(seed);
  const names = ['cat', 'dog', 'eel'];
  const rows = ['x,y,kind'];
  for (let i = 0; i < n; i++) rows.push(`${i},${(2 * i + rng.next()).toFixed(3)},${names[i % 3]}`);
  return `${rows.join('\n')}\n`;
}

async function* text(s: string): AsyncIterable<Uint8Array> {
  const b = new TextEncoder().encode(s);
  for (let i = 0; i < b.length; i += 1000) yield b.subarray(i, i + 1000);
}

function samplesOf(r: ImportResult, sink: { objects: Map<string, Uint8Array> }, split: string) {
  const out: { x: number[]; label: number }[] = [];
  for (const s of r.shards.filter((s) => s.split === split)) {
    const d = decodeShard(sink.objects.get(s.sha256)!);
    for (let i = 0; i < d.count; i++) out.push({ x: Array.from(d.features.subarray(i * d.dim, (i + 1) * d.dim)), label: d.labels[i] });
  }
  return out;
}

describe('importDataset', () => {
  it('splits exactly, shuffles, shards and names classes', async () => {
    const sink = memorySink();
    const train = await parseCsv(text(csv(1000)), { labelColumn: 'kind' });
    const r = await importDataset({ train }, sink, { normalise: 'none', validationFraction: 0.1, testFraction: 0.2, seed: 5, shardBytes: 64 * 12 + 24 });
    expect(r.counts).toEqual({ train: 700, validation: 100, test: 200 });
    expect(r.classNames).toEqual(['cat', 'dog', 'eel']);
    expect(r.featureShape).toEqual([2]);
    const all = ['train', 'validation', 'test'].flatMap((s) => samplesOf(r, sink, s));
    // Every row appears exactly once, with its label.
    expect(all.map((s) => s.x[0]).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    for (const s of all) expect(s.label).toBe(s.x[0] % 3);
    // Shuffled: the train split is not in file order.
    const trainX = samplesOf(r, sink, 'train').map((s) => s.x[0]);
    expect(trainX).not.toEqual([...trainX].sort((a, b) => a - b));
    expect(r.shards.filter((s) => s.split === 'train').every((s) => s.sampleCount <= 64)).toBe(true);
  });

  it('standardises with train statistics only', async () => {
    const sink = memorySink();
    const r = await importDataset({ train: await parseCsv(text(csv(600)), { labelColumn: 'kind' }) }, sink, { normalise: 'standardise', validationFraction: 0.25, seed: 2, bucketBytes: 1000 });
    if (r.normalisation.kind !== 'standardise') throw new Error('expected standardise');
    const train = samplesOf(r, sink, 'train');
    for (let j = 0; j < 2; j++) {
      const xs = train.map((s) => s.x[j]);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
      expect(mean).toBeCloseTo(0, 4);
      expect(sd).toBeCloseTo(1, 4);
    }
    // Validation is transformed with the train statistics, so its mean is not forced to 0 exactly.
    const val = samplesOf(r, sink, 'validation');
    expect(val).toHaveLength(150);
  });

  it('is reproducible: the same data and seed give the same shards, stored once', async () => {
    const sink = memorySink();
    const a = await importDataset({ train: await parseCsv(text(csv(300)), { labelColumn: 'kind' }) }, sink, { seed: 9, shardBytes: 2000 });
    const b = await importDataset({ train: await parseCsv(text(csv(300)), { labelColumn: 'kind' }) }, sink, { seed: 9, shardBytes: 2000 });
    expect(b.contentHash).toBe(a.contentHash);
    expect(b.shardsStored).toBe(0);
    expect(a.shardsStored).toBe(a.shards.length);
    const c = await importDataset({ train: await parseCsv(text(csv(300)), { labelColumn: 'kind' }) }, sink, { seed: 10, shardBytes: 2000 });
    expect(c.contentHash).not.toBe(a.contentHash);
  });

  it('rejects a label outside the declared classes, with its line', async () => {
    const train = await parseCsv(text('x,label\n1,a\n2,b\n3,z\n'));
    const err = await importDataset({ train }, memorySink(), { classes: ['a', 'b'] }).catch((e) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect(err.message).toMatch(/label "z" is not one of the declared classes \(a, b\) \(at line 4\)/);
  });

  it('maps integer CSV labels to class indices', async () => {
    const sink = memorySink();
    const r = await importDataset({ train: await parseCsv(text('x,label\n1,2\n2,0\n3,2\n')) }, sink, { validationFraction: 0, normalise: 'none' });
    expect(r.classNames).toEqual(['0', '1', '2']);
    const s = samplesOf(r, sink, 'train').sort((a, b) => a.x[0] - b.x[0]);
    expect(s.map((x) => x.label)).toEqual([2, 0, 2]);
  });

  it('imports the built-in MNIST (60k train + 10k test) scaled to [0, 1]', async () => {
    const sink = memorySink();
    const r = await importMnist(sink, { seed: 1, validationFraction: 0.1 });
    expect(r.counts).toEqual({ train: 54_000, validation: 6000, test: 10_000 });
    expect(r.featureShape).toEqual([28, 28, 1]);
    expect(r.numClasses).toBe(10);
    expect(r.normalisation).toEqual({ kind: 'scale', min: 0, max: 255 });
    const d = decodeShard(sink.objects.get(r.shards[0].sha256)!);
    expect(d.features.every((x) => x >= 0 && x <= 1)).toBe(true);
    expect(d.features.some((x) => x === 1)).toBe(true);
    expect(r.shards.every((s) => s.bytes <= 2 * 1024 * 1024)).toBe(true);
  });
});
