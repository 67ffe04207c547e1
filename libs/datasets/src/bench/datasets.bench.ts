/**
 * Dataset benchmark: import + shard time and peak memory for MNIST and for a synthetic float32
 * dataset (default 1 GiB, `--size <MiB>`), and shard fetch throughput from the object store for
 * one and four concurrent readers next to raw NATS publish/subscribe throughput, same run.
 *
 *   npm run bench datasets -- [--size 1024] [--small 128] [--nats nats://127.0.0.1:4222] [--store-large]
 *                             [--only fetch] [--reps 3]
 *
 * `--only fetch` skips the event-loop test and the synthetic imports: it imports MNIST into the
 * bench bucket (so there are real ~2 MiB shards) and runs the fetch part alone. The fetch part
 * runs one untimed warm-up pass, then `--reps` rounds, each: ShardStore.get with 1 and with 4
 * readers and the same with a direct get per chunk (the read path before d65f2a0, for comparison in
 * the same run), in an order that rotates per round, then raw pub/sub; it prints every round, the
 * median and range of each row, and fetch/raw ratios per round.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from 'nats';
import { npyHeader } from '../formats/npy.js';
import { hashOnlySink, importDataset, type ImportResult, type ShardSink } from '../import.js';
import { importMnist } from '../mnist.js';
import { fileSources, openSource } from '../sources.js';
import { ShardStore } from '../shard-store.js';
import { sha256Hex } from '../shard.codec.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    small: { type: 'string', default: '128' },
    nats: { type: 'string', default: 'nats://127.0.0.1:4222' },
    'store-large': { type: 'boolean', default: false },
    dim: { type: 'string', default: '256' },
    only: { type: 'string' },
    reps: { type: 'string', default: '3' },
  },
});

if (args.only !== undefined && args.only !== 'fetch') {
  console.error(`--only takes 'fetch' (got ${JSON.stringify(args.only)})`);
  process.exit(2);
}
const REPS = Number(args.reps);
if (!Number.isInteger(REPS) || REPS < 1) {
  console.error(`--reps takes a positive integer (got ${JSON.stringify(args.reps)})`);
  process.exit(2);
}

const MiB = 1024 * 1024;
const DIM = Number(args.dim);

/** Peak RSS and external (ArrayBuffer) memory while `fn` runs, sampled every 20 ms. */
async function withPeakMemory<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: number; peakRss: number; peakExternal: number; baseRss: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const baseRss = process.memoryUsage().rss;
  let peakRss = baseRss;
  let peakExternal = 0;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakExternal = Math.max(peakExternal, m.arrayBuffers + m.heapUsed);
  }, 20);
  const t0 = performance.now();
  try {
    const result = await fn();
    return { result, seconds: (performance.now() - t0) / 1000, peakRss, peakExternal, baseRss };
  } finally {
    clearInterval(timer);
  }
}

/** Writes a synthetic (N, DIM) float32 NPY and an (N,) int32 labels NPY of about `mib` MiB. */
async function synth(dir: string, mib: number): Promise<{ features: string; labels: string; n: number }> {
  const n = Math.floor((mib * MiB) / (DIM * 4));
  const features = join(dir, `x-${mib}.npy`);
  const labels = join(dir, `y-${mib}.npy`);
  const fw = createWriteStream(features);
  fw.write(npyHeader('<f4', [n, DIM]));
  let state = 12345;
  const rows = 1024;
  for (let i = 0; i < n; i += rows) {
    const k = Math.min(rows, n - i);
    const block = new Float32Array(k * DIM);
    for (let j = 0; j < block.length; j++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      block[j] = state / 2 ** 32 - 0.5;
    }
    if (!fw.write(new Uint8Array(block.buffer))) await once(fw, 'drain');
  }
  await new Promise<void>((r) => fw.end(r));
  const lw = createWriteStream(labels);
  lw.write(npyHeader('<i4', [n]));
  for (let i = 0; i < n; i += 65536) {
    const k = Math.min(65536, n - i);
    const l = Int32Array.from({ length: k }, (_, j) => (i + j) % 10);
    if (!lw.write(new Uint8Array(l.buffer))) await once(lw, 'drain');
  }
  await new Promise<void>((r) => lw.end(r));
  return { features, labels, n };
}

async function importNpy(files: { features: string; labels: string }, sink: ShardSink): Promise<ImportResult> {
  const train = await openSource('npy', await fileSources([files.features, files.labels]));
  return importDataset({ train }, sink, { normalise: 'standardise', validationFraction: 0.1, seed: 1 });
}

async function eventLoopDelay(fn: () => Promise<unknown>): Promise<{ ms: number; p50: string; p99: string; max: string }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  h.disable();
  const f = (ns: number) => (ns / 1e6).toFixed(0);
  return { ms, p50: f(h.percentile(50)), p99: f(h.percentile(99)), max: f(h.max) };
}

interface Row {
  what: string;
  samples: number;
  inputMiB: number;
  shards: number;
  seconds: number;
  peakRssMiB: number;
  rssGrowthMiB: number;
}

function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  console.log(`\n${title}`);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: (string | number)[]) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

/** Reads one shard by key and returns its verified bytes. */
type ShardReader = (sha256: string) => Promise<Uint8Array>;

/** JetStream direct get; present on nats.js' JetStreamManager at runtime but not in its public type. */
interface DirectGet {
  getMessage(stream: string, query: { next_by_subj: string; seq: number } | { last_by_subj: string }): Promise<{ data: Uint8Array; seq: number }>;
}

/**
 * The read path ShardStore.get had before d65f2a0, kept here only to compare in the same run:
 * metadata by a direct get of its last message, then one direct get per ~1 MiB chunk, then the
 * native sha256 check.
 */
async function directGetReader(nc: NatsConnection, bucket: string): Promise<ShardReader> {
  const jsm = await nc.jetstreamManager();
  const direct = (jsm as unknown as { direct: DirectGet }).direct;
  const stream = `OBJ_${bucket}`;
  const name = (key: string) => {
    const t = Buffer.from(key).toString('base64url');
    return t + '='.repeat((4 - (t.length % 4)) % 4);
  };
  return async (key) => {
    const m = await direct.getMessage(stream, { last_by_subj: `$O.${bucket}.M.${name(key)}` });
    const info = JSON.parse(new TextDecoder().decode(m.data)) as { nuid: string; size: number; chunks: number };
    const out = new Uint8Array(info.size);
    const subject = `$O.${bucket}.C.${info.nuid}`;
    let at = 0;
    let seq = 0;
    for (let chunk = 0; chunk < info.chunks; chunk++) {
      const c = await direct.getMessage(stream, { next_by_subj: subject, seq: seq + 1 });
      out.set(c.data, at);
      at += c.data.byteLength;
      seq = c.seq;
    }
    if (at !== info.size || sha256Hex(out) !== key) throw new Error(`direct-get reference read of ${key} is corrupt`);
    return out;
  };
}

type ReadPath = 'shard-store' | 'direct-get';

async function fetchThroughput(nc: NatsConnection[], bucket: string, keys: string[], readers: number, path: ReadPath): Promise<{ mbps: number; bytes: number; seconds: number }> {
  const open = async (c: NatsConnection): Promise<ShardReader> => {
    if (path === 'direct-get') return directGetReader(c, bucket);
    const s = await ShardStore.open(c, { bucket });
    return (key) => s.get(key);
  };
  const stores = await Promise.all(nc.slice(0, readers).map(open));
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(
    stores.map(async (get, r) => {
      // Each reader fetches its own share, as workers fetch the shards dealt to them.
      for (let i = r; i < keys.length; i += readers) {
        const got = await get(keys[i]);
        bytes += got.byteLength;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { mbps: bytes / MiB / seconds, bytes, seconds };
}

async function pubSubThroughput(url: string, payloadBytes: number, totalBytes: number): Promise<{ mbps: number; seconds: number }> {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const subject = `gp.bench.${randomBytes(4).toString('hex')}`;
  const count = Math.ceil(totalBytes / payloadBytes);
  let got = 0;
  const s = sub.subscribe(subject, { max: count });
  await sub.flush();
  const payload = randomBytes(payloadBytes);
  const t0 = performance.now();
  const done = (async () => {
    for await (const m of s) {
      got += m.data.byteLength;
    }
  })();
  for (let i = 0; i < count; i++) {
    pub.publish(subject, payload);
    // Let the socket drain now and then so the client does not buffer everything.
    if (i % 64 === 63) await pub.flush();
  }
  await pub.flush();
  await done;
  const seconds = (performance.now() - t0) / 1000;
  await pub.close();
  await sub.close();
  return { mbps: got / MiB / seconds, seconds };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** "median (min–max)" of `xs`, with `digits` decimals. */
function spread(xs: number[], digits = 0): string {
  const f = (x: number) => x.toFixed(digits);
  return xs.length === 1 ? f(xs[0]) : `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

const loadavg = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

/**
 * Shard fetch for 1 and 4 readers, by ShardStore.get and by the old direct-get-per-chunk path,
 * next to raw pub/sub, `REPS` rounds in one run (each round measures every row once, so the
 * rows of a round share the VM's load), then median and range per row.
 */
async function fetchPart(ncs: NatsConnection[], bucket: string, keys: string[]): Promise<void> {
  const rows = [
    { name: 'ShardStore.get (filtered consumer per object) + sha256, 1 reader', readers: 1, path: 'shard-store' as const },
    { name: 'ShardStore.get (filtered consumer per object) + sha256, 4 readers (aggregate)', readers: 4, path: 'shard-store' as const },
    { name: 'reference: direct get per chunk (before d65f2a0) + sha256, 1 reader', readers: 1, path: 'direct-get' as const },
    { name: 'reference: direct get per chunk (before d65f2a0) + sha256, 4 readers (aggregate)', readers: 4, path: 'direct-get' as const },
  ];
  const fetched: number[][] = rows.map(() => []);
  const raw: number[] = [];
  const loads: string[] = [];
  // Warm-up, not counted: one pass of each path, so no row pays for the import's tail (the
  // server still writing the stream out) or for first-use costs.
  for (const r of rows) await fetchThroughput(ncs, bucket, keys, r.readers, r.path);
  for (let rep = 0; rep < REPS; rep++) {
    loads.push(loadavg());
    // The order of the fetch rows rotates from round to round, so no path is always first.
    for (let k = 0; k < rows.length; k++) {
      const i = (k + rep) % rows.length;
      fetched[i][rep] = (await fetchThroughput(ncs, bucket, keys, rows[i].readers, rows[i].path)).mbps;
    }
    raw.push((await pubSubThroughput(args.nats, 512 * 1024, 512 * MiB)).mbps);
  }
  printTable(
    `Fetch, every round (MiB/s; ${keys.length} MNIST shards of ~2 MiB; raw pub/sub: 512 KiB messages, 512 MiB, one publisher → one subscriber)`,
    ['round', 'load avg at start', 'new, 1 reader', 'new, 4 readers', 'old, 1 reader', 'old, 4 readers', 'raw pub/sub'],
    raw.map((x, rep) => [rep + 1, loads[rep], ...fetched.map((f) => f[rep].toFixed(0)), x.toFixed(0)]),
  );
  printTable(
    `Fetch, ${REPS} rounds: median (min–max); fetch/raw is per round (fetch ÷ that round's raw pub/sub), then median (min–max)`,
    ['path', 'MiB/s', 'fetch / raw'],
    [
      ...rows.map((r, i) => [r.name, spread(fetched[i]), spread(fetched[i].map((x, rep) => x / raw[rep]), 2)]),
      ['raw NATS publish → subscribe', spread(raw), '1'],
    ],
  );
  printTable(
    'ShardStore.get ÷ direct get per chunk (new ÷ old), per round, then median (min–max)',
    ['readers', 'new / old'],
    [
      [1, spread(fetched[0].map((x, rep) => x / fetched[2][rep]), 2)],
      [4, spread(fetched[1].map((x, rep) => x / fetched[3][rep]), 2)],
    ],
  );
  console.log(`load average at the end: ${loadavg()}`);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gp-bench-datasets-'));
  const ncs = await Promise.all([0, 1, 2, 3].map(() => connect({ servers: args.nats })));
  const bucket = `gp_shards_bench_${randomBytes(4).toString('hex')}`;
  const store = await ShardStore.open(ncs[0], { bucket });
  const rows: Row[] = [];
  const add = (what: string, inputMiB: number, m: Awaited<ReturnType<typeof withPeakMemory<ImportResult>>>) => {
    const r = m.result;
    rows.push({
      what,
      samples: r.counts.train + r.counts.validation + r.counts.test,
      inputMiB: Math.round(inputMiB),
      shards: r.shards.length,
      seconds: Number(m.seconds.toFixed(1)),
      peakRssMiB: Math.round(m.peakRss / MiB),
      rssGrowthMiB: Math.round((m.peakRss - m.baseRss) / MiB),
    });
  };
  try {
    console.log(`node ${process.version}, NATS ${args.nats}, synthetic dim ${DIM}, load average ${loadavg()}${args.only ? `, --only ${args.only}` : ''}, ${REPS} fetch rounds`);
    if (args.only === 'fetch') {
      const m = await withPeakMemory(() => importMnist(store, { seed: 1 }));
      console.log(`MNIST 60k+10k → object store: ${m.result.shards.length} shards in ${m.seconds.toFixed(1)} s`);
      await fetchPart(ncs, bucket, m.result.shards.map((s) => s.sha256).slice(0, 64));
      return;
    }
    const loop = await eventLoopDelay(() => importMnist(hashOnlySink, { seed: 1 }));
    const idle = await eventLoopDelay(async () => {
      // Baseline: the same process busy in ~0.2 ms steps that yield, as long as the import took.
      const end = performance.now() + loop.ms;
      while (performance.now() < end) {
        let x = 0;
        for (let i = 0; i < 2e5; i++) x += i;
        if (x < 0) break;
        await new Promise((r) => setImmediate(r));
      }
    });
    printTable(
      'Event-loop delay while importing MNIST on this thread (monitorEventLoopDelay, 5 ms resolution)',
      ['run', 'p50 ms', 'p99 ms', 'max ms'],
      [
        ['MNIST import (pipeline only)', loop.p50, loop.p99, loop.max],
        ['baseline: yielding busy loop', idle.p50, idle.p99, idle.max],
      ],
    );
    add('MNIST 60k+10k, pipeline only (hash)', 52.4, await withPeakMemory(() => importMnist(hashOnlySink, { seed: 1 })));
    const mnist = await withPeakMemory(() => importMnist(store, { seed: 1 }));
    add('MNIST 60k+10k → object store', 52.4, mnist);
    add('MNIST again → object store (all shards exist)', 52.4, await withPeakMemory(() => importMnist(store, { seed: 1 })));
    for (const mib of [Number(args.small), Number(args.size)]) {
      const files = await synth(dir, mib);
      add(`synthetic ${mib} MiB float32 (${files.n}×${DIM}), pipeline only`, mib, await withPeakMemory(() => importNpy(files, hashOnlySink)));
      if (args['store-large'] || mib === Number(args.small)) add(`synthetic ${mib} MiB → object store`, mib, await withPeakMemory(() => importNpy(files, store)));
      await rm(files.features, { force: true });
      await rm(files.labels, { force: true });
    }
    printTable(
      'Import + shard (2 MiB shards; peak RSS sampled every 20 ms; growth = peak − RSS before the import)',
      ['import', 'samples', 'input MiB', 'shards', 'seconds', 'peak RSS MiB', 'RSS growth MiB'],
      rows.map((r) => [r.what, r.samples, r.inputMiB, r.shards, r.seconds, r.peakRssMiB, r.rssGrowthMiB]),
    );

    await fetchPart(ncs, bucket, mnist.result.shards.map((s) => s.sha256).slice(0, 64));
  } finally {
    await store.destroy().catch(() => undefined);
    await Promise.all(ncs.map((c) => c.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
