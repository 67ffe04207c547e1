/**
 * The import pipeline: parsed records → validation → split → shuffle → normalise → shards.
 *
 * Memory does not grow with the input size. The input is streamed through three passes over
 * temporary files:
 *   1. parse and validate each source, spooling fixed-size records (float32 features, int32
 *      provisional label) to a temp file, collecting the label set;
 *   2. read the spool once: assign each record to train / validation / test with selection
 *      sampling (exact counts, seeded), fold train records into the normalisation statistics
 *      (min/max, Welford mean/variance), and scatter records into random "buckets" of at most
 *      ~`bucketBytes` per split;
 *   3. per split, load one bucket at a time, shuffle it (seeded), normalise, relabel, and cut
 *      shards of `shardBytes`, handing each to the sink (the object store).
 * Peak memory is about one bucket plus one shard plus small write buffers per bucket.
 * The work is chunked async streaming on the calling thread: each step handles at most one
 * batch (~1 MiB) or one shard before yielding to the event loop.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, WriteStream } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { DatasetFormatError } from './errors.js';
import { ByteReader } from './formats/byte-reader.js';
import { ParsedSource } from './formats/types.js';
import { FeatureStats, Normalisation, normaliseInto } from './normalise.js';
import { createRng, permutation } from './rng.js';
import { DEFAULT_SHARD_BYTES, encodeShard, samplesPerShard, sha256Hex } from './shard.codec.js';

export type SplitName = 'train' | 'validation' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'validation', 'test'];

export interface ImportOptions {
  /** Default `scale`. */
  normalise?: Normalisation['kind'];
  /** Fraction of the train source held out for validation (default 0.1). */
  validationFraction?: number;
  /** Fraction of the train source held out for test when there is no test source (default 0). */
  testFraction?: number;
  /** Seed of the split and shuffle (default 0). */
  seed?: number | string;
  /** Target shard size in bytes (default 2 MiB). */
  shardBytes?: number;
  /** Declared class names; a label outside them is an error. CSV labels are matched by name, integer labels by index. */
  classes?: string[];
  /** Largest number of distinct classes accepted when none are declared (default 10 000). */
  maxClasses?: number;
  /** Where temp files go (default the OS temp dir). */
  tmpDir?: string;
  /** Upper bound of one shuffle bucket, i.e. of the import's working memory (default 32 MiB). */
  bucketBytes?: number;
  signal?: AbortSignal;
}

/** Where shards go; `ShardStore` implements it. */
export interface ShardSink {
  /** Stores a shard of `split` (a sink may keep splits apart: the coordinator's evaluation splits). */
  put(bytes: Uint8Array, split?: SplitName): Promise<{ sha256: string; stored: boolean }>;
}

export interface ShardInfo {
  split: SplitName;
  index: number;
  sampleCount: number;
  bytes: number;
  sha256: string;
}

export interface ImportResult {
  featureShape: number[];
  featureDtype: 'float32';
  sourceDtype: string;
  numClasses: number;
  classNames: string[];
  normalisation: Normalisation;
  counts: Record<SplitName, number>;
  shards: ShardInfo[];
  /** sha256 over the shard list: equal for a re-import of the same data with the same options. */
  contentHash: string;
  totalBytes: number;
  /** Shards that were new to the sink (the rest were already stored). */
  shardsStored: number;
}

export interface ImportSources {
  train: ParsedSource;
  /** A separate test split; otherwise `testFraction` of the train source. */
  test?: ParsedSource;
}

interface Spool {
  path: string;
  count: number;
}

class LabelTable {
  /** Provisional id → raw label text. */
  readonly raw: string[] = [];
  private readonly ids = new Map<string, number>();
  numeric = true;

  constructor(
    private readonly declared: string[] | undefined,
    private readonly maxClasses: number,
  ) {}

  /** Provisional id of a string label (CSV): matched against declared classes by name. */
  ofString(label: string, at: () => string): number {
    const id = this.ids.get(label);
    if (id !== undefined) return id;
    if (this.declared && !this.declared.includes(label)) {
      throw new DatasetFormatError(`label ${JSON.stringify(label)} is not one of the declared classes (${this.declared.join(', ')})`, at());
    }
    if (!/^\d+$/.test(label)) this.numeric = false;
    return this.intern(label, at);
  }

  /** Provisional id of an integer label (IDX, NPY): a class index. */
  ofInt(label: number, at: () => string): number {
    const id = this.ids.get(String(label));
    if (id !== undefined) return id;
    this.intMode = true;
    if (label < 0) throw new DatasetFormatError(`label ${label} is negative`, at());
    if (this.declared && label >= this.declared.length) {
      throw new DatasetFormatError(`label ${label} is outside the ${this.declared.length} declared classes`, at());
    }
    if (label >= this.maxClasses) throw new DatasetFormatError(`label ${label} is not below the limit of ${this.maxClasses} classes`, at());
    return this.intern(String(label), at);
  }

  private intMode = false;

  private intern(label: string, at: () => string): number {
    if (this.raw.length >= this.maxClasses) throw new DatasetFormatError(`more than ${this.maxClasses} distinct labels; is the label column right?`, at());
    const id = this.raw.length;
    this.raw.push(label);
    this.ids.set(label, id);
    return id;
  }

  /** Final class names, and the provisional → final index map. */
  finish(): { classNames: string[]; remap: Int32Array } {
    const remap = new Int32Array(this.raw.length);
    let classNames: string[];
    const declared = this.declared;
    if (declared) {
      classNames = declared;
      this.raw.forEach((r, i) => (remap[i] = this.intMode ? Number(r) : declared.indexOf(r)));
    } else if (this.numeric && this.raw.reduce((m, r) => Math.max(m, Number(r)), -1) < this.maxClasses) {
      // Integer labels are class indices 0..max (classes with no sample keep their index).
      const max = this.raw.reduce((m, r) => Math.max(m, Number(r)), -1);
      classNames = Array.from({ length: max + 1 }, (_, i) => String(i));
      this.raw.forEach((r, i) => (remap[i] = Number(r)));
    } else {
      // Names sort alphabetically; integer names too large to be indices sort numerically.
      classNames = this.numeric ? [...this.raw].sort((a, b) => Number(a) - Number(b)) : [...this.raw].sort();
      const pos = new Map(classNames.map((c, i) => [c, i]));
      this.raw.forEach((r, i) => (remap[i] = pos.get(r)!));
    }
    return { classNames, remap };
  }
}

/**
 * Yields to the event loop (a macrotask, so I/O callbacks and timers run) when the caller has
 * been busy for more than `sliceMs` since the last yield. Awaiting buffered stream data only
 * queues microtasks, which would let one import hold the loop for a whole pass.
 */
class Pacer {
  private last = performance.now();
  constructor(private readonly sliceMs = 10) {}
  async tick(): Promise<void> {
    if (performance.now() - this.last < this.sliceMs) return;
    await yieldToLoop();
    this.last = performance.now();
  }
}

async function write(ws: WriteStream, buf: Uint8Array): Promise<void> {
  // events.once rejects on 'error' and removes its listeners either way.
  if (!ws.write(buf)) await once(ws, 'drain');
}

async function close(ws: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) => ws.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** Pass 1: parse, validate and spool one source. */
async function spool(src: ParsedSource, path: string, dim: number, labels: LabelTable, pacer: Pacer, signal?: AbortSignal): Promise<Spool> {
  const ws = createWriteStream(path);
  let count = 0;
  try {
    for await (const batch of src.batches) {
      signal?.throwIfAborted();
      const n = batch.count;
      const out = new Float32Array(n * (dim + 1));
      const lab = new Int32Array(out.buffer);
      const isStr = Array.isArray(batch.labels);
      for (let i = 0; i < n; i++) {
        out.set(batch.features.subarray(i * dim, (i + 1) * dim), i * (dim + 1));
        const item = batch.firstItem + i;
        const at = () => (isStr ? `line ${item + 2}` : `labels, item ${item}`);
        lab[i * (dim + 1) + dim] = isStr
          ? labels.ofString((batch.labels as string[])[i], at)
          : labels.ofInt((batch.labels as Int32Array)[i], at);
      }
      count += n;
      await write(ws, new Uint8Array(out.buffer));
      await pacer.tick();
    }
  } finally {
    await close(ws);
  }
  return { path, count };
}

/** Streams fixed-size records of a file in batches. */
async function* readRecords(path: string, recBytes: number): AsyncIterable<Float32Array> {
  const r = new ByteReader(createReadStream(path, { highWaterMark: 1 << 20 }), path);
  const per = Math.max(1, Math.floor((1 << 20) / recBytes));
  for (;;) {
    const raw = await r.readRecords(recBytes, per, 'a record');
    if (raw.byteLength === 0) return;
    const copy = raw.byteOffset % 4 === 0 ? raw : new Uint8Array(raw);
    yield new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
  }
}

/** Buffered writers for one split's buckets. */
class Buckets {
  readonly paths: string[];
  private readonly streams: WriteStream[];
  private readonly bufs: Uint8Array[];
  private readonly fill: number[];
  counts: number[];

  constructor(dir: string, split: SplitName, readonly k: number, private readonly recBytes: number) {
    this.paths = Array.from({ length: k }, (_, i) => join(dir, `${split}-${i}.bin`));
    this.streams = this.paths.map((p) => createWriteStream(p));
    const bufBytes = Math.max(recBytes, Math.floor((64 * 1024) / recBytes) * recBytes);
    this.bufs = this.paths.map(() => new Uint8Array(bufBytes));
    this.fill = this.paths.map(() => 0);
    this.counts = this.paths.map(() => 0);
  }

  async add(bucket: number, record: Uint8Array): Promise<void> {
    const buf = this.bufs[bucket];
    buf.set(record, this.fill[bucket]);
    this.fill[bucket] += this.recBytes;
    this.counts[bucket]++;
    if (this.fill[bucket] + this.recBytes > buf.byteLength) await this.flush(bucket);
  }

  private async flush(bucket: number): Promise<void> {
    if (this.fill[bucket] === 0) return;
    await write(this.streams[bucket], this.bufs[bucket].slice(0, this.fill[bucket]));
    this.fill[bucket] = 0;
  }

  async close(): Promise<void> {
    for (let b = 0; b < this.k; b++) {
      await this.flush(b);
      await close(this.streams[b]);
    }
  }
}

/** Imports `sources` into shards handed to `sink`. See the module comment for the passes. */
export async function importDataset(sources: ImportSources, sink: ShardSink, opts: ImportOptions = {}): Promise<ImportResult> {
  const normKind = opts.normalise ?? 'scale';
  const vf = opts.validationFraction ?? 0.1;
  const tf = sources.test ? 0 : (opts.testFraction ?? 0);
  if (!(vf >= 0 && tf >= 0 && vf + tf < 1)) throw new DatasetFormatError(`validation (${vf}) and test (${tf}) fractions must be ≥ 0 and sum to less than 1`);
  const seed = opts.seed ?? 0;
  const shape = sources.train.featureShape;
  if (sources.test && sources.test.featureShape.join('x') !== shape.join('x')) {
    throw new DatasetFormatError(`the test file's samples have shape ${sources.test.featureShape.join('×')}, the train file's ${shape.join('×')}`);
  }
  const dim = shape.reduce((a, b) => a * b, 1);
  const recBytes = 4 * (dim + 1);
  const bucketBytes = opts.bucketBytes ?? 32 * 1024 * 1024;
  const perShard = samplesPerShard(shape, opts.shardBytes ?? DEFAULT_SHARD_BYTES);
  const labels = new LabelTable(opts.classes, opts.maxClasses ?? 10_000);
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'gp-import-'));
  try {
    // Pass 1.
    const pacer = new Pacer();
    const trainSpool = await spool(sources.train, join(dir, 'train.spool'), dim, labels, pacer, opts.signal);
    const testSpool = sources.test ? await spool(sources.test, join(dir, 'test.spool'), dim, labels, pacer, opts.signal) : null;
    const { classNames, remap } = labels.finish();

    // Pass 2.
    const n = trainSpool.count;
    const want = { validation: Math.round(n * vf), test: Math.round(n * tf) };
    const counts: Record<SplitName, number> = {
      train: n - want.validation - want.test,
      validation: want.validation,
      test: testSpool ? testSpool.count : want.test,
    };
    const bucketsOf = (count: number) => Math.max(1, Math.ceil((count * recBytes) / bucketBytes));
    const buckets = Object.fromEntries(SPLITS.map((s) => [s, new Buckets(dir, s, bucketsOf(counts[s]), recBytes)])) as Record<SplitName, Buckets>;
    const stats = new FeatureStats(dim);
    const splitRng = createRng(seed, 'split');
    const bucketRng = createRng(seed, 'bucket');
    let left = { validation: want.validation, test: want.test };
    let seen = 0;
    for await (const recs of readRecords(trainSpool.path, recBytes)) {
      opts.signal?.throwIfAborted();
      const bytes = new Uint8Array(recs.buffer, recs.byteOffset, recs.byteLength);
      const k = recs.length / (dim + 1);
      for (let i = 0; i < k; i++) {
        const remaining = n - seen++;
        const u = splitRng.next() * remaining;
        let split: SplitName = 'train';
        if (u < left.validation) {
          split = 'validation';
          left = { ...left, validation: left.validation - 1 };
        } else if (u < left.validation + left.test) {
          split = 'test';
          left = { ...left, test: left.test - 1 };
        } else stats.add(recs, i * (dim + 1));
        const b = buckets[split];
        await b.add(bucketRng.int(b.k), bytes.subarray(i * recBytes, (i + 1) * recBytes));
      }
      await pacer.tick();
    }
    if (testSpool) {
      for await (const recs of readRecords(testSpool.path, recBytes)) {
        const bytes = new Uint8Array(recs.buffer, recs.byteOffset, recs.byteLength);
        const k = recs.length / (dim + 1);
        for (let i = 0; i < k; i++) await buckets.test.add(bucketRng.int(buckets.test.k), bytes.subarray(i * recBytes, (i + 1) * recBytes));
        await pacer.tick();
      }
    }
    for (const s of SPLITS) await buckets[s].close();
    await rm(trainSpool.path, { force: true });
    if (testSpool) await rm(testSpool.path, { force: true });
    const normalisation = stats.fit(normKind);

    // Pass 3.
    const shards: ShardInfo[] = [];
    let shardsStored = 0;
    let totalBytes = 0;
    for (const split of SPLITS) {
      let feats = new Float32Array(perShard * dim);
      let labs = new Int32Array(perShard);
      let fill = 0;
      let index = 0;
      const emit = async () => {
        const bytes = encodeShard({ count: fill, shape, normalisation: normalisation.kind }, feats.subarray(0, fill * dim), labs.subarray(0, fill));
        const { sha256, stored } = await sink.put(bytes, split);
        if (stored) shardsStored++;
        totalBytes += bytes.byteLength;
        shards.push({ split, index: index++, sampleCount: fill, bytes: bytes.byteLength, sha256 });
        feats = new Float32Array(perShard * dim);
        labs = new Int32Array(perShard);
        fill = 0;
        await pacer.tick();
      };
      const b = buckets[split];
      for (let bi = 0; bi < b.k; bi++) {
        opts.signal?.throwIfAborted();
        const raw = await readFile(b.paths[bi]);
        await rm(b.paths[bi], { force: true });
        const recs = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        const labsView = new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        const order = permutation(b.counts[bi], createRng(seed, 'shuffle', split, bi));
        for (let i = 0; i < order.length; i++) {
          const off = order[i] * (dim + 1);
          normaliseInto(normalisation, dim, recs, off, feats, fill * dim);
          labs[fill] = remap[labsView[off + dim]];
          fill++;
          if (fill === perShard) await emit();
          else if ((i & 255) === 255) await pacer.tick();
        }
      }
      if (fill > 0) await emit();
    }
    const h = createHash('sha256');
    for (const s of shards) h.update(`${s.split}:${s.sha256}\n`);
    return {
      featureShape: shape,
      featureDtype: 'float32',
      sourceDtype: sources.train.sourceDtype,
      numClasses: classNames.length,
      classNames,
      normalisation,
      counts,
      shards,
      contentHash: h.digest('hex'),
      totalBytes,
      shardsStored,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Sink that stores nothing; hashes only (dry runs, benchmarks of the pipeline alone). */
export const hashOnlySink: ShardSink = {
  put: async (bytes) => ({ sha256: sha256Hex(bytes), stored: true }),
};

/** Reads a whole file as one record source; helper for callers that hold a temp file. */
export async function fileSize(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}
