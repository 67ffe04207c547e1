/**
 * Shards in the NATS JetStream object store, keyed by their sha256 (hex). The coordinator
 * puts them at import; workers get them straight from NATS with read-only credentials (the
 * coordinator never proxies shard bytes).
 */
import { isStatusMessage, openFilteredFeed, retryNats } from '@gradpool/nats-auth';
import { buckets } from '@gradpool/protocol';
import { createHash, randomBytes } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import { headers, type JetStreamClient, type JetStreamManager, type NatsConnection, type ObjectStore, type StoredMsg } from 'nats';

/** JetStream direct get; present on nats.js' JetStreamManager at runtime but not in its public type. */
interface DirectGet {
  getMessage(stream: string, query: { last_by_subj: string }): Promise<StoredMsg>;
}

/** The object-store metadata this store reads (a subset of nats.js' ObjectInfo). */
interface ObjectMeta {
  name: string;
  nuid: string;
  size: number;
  chunks: number;
  deleted?: boolean;
}
import { ShardIntegrityError, ShardNotFoundError } from './errors.js';
import { ShardSink } from './import.js';
import { sha256Hex } from './shard.codec.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Object-store chunk size for shard puts: under the server's default max_payload (1 MiB) with room for headers. */
const PUT_CHUNK_BYTES = 1000 * 1024;
/** Longest wait for the next chunk of an object being read (the consumer's heartbeats do not extend it). */
const CHUNK_WAIT_MS = 30_000;
/**
 * Objects read at once over one NATS connection. Each read is a push consumer that sends the
 * whole object as fast as the server can: dozens at once (the keeper reading a 30 000-sample
 * split) outran the client, the server cut the connection as a slow consumer, dropped chunks,
 * and the reads (and everything else on that connection) stalled.
 */
export const SHARD_READS_PER_CONNECTION = 4;
const readLimits = new WeakMap<NatsConnection, LimitFunction>();

/** base64url with padding, as the object store encodes names and digests. */
function base64UrlPadded(b: Uint8Array): string {
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
  return s + '='.repeat((4 - (s.length % 4)) % 4);
}

export interface ShardStoreOptions {
  /** Bucket name (default `buckets.shards`); tests use a unique one. */
  bucket?: string;
  /** JetStream replicas when the bucket is created (default 1). */
  replicas?: number;
  /**
   * Workers: bind without creating or managing anything, so that the credentials of
   * `shardReaderPermissions` (libs/nats-auth) suffice; `put` and `delete` then throw.
   */
  readOnly?: boolean;
  /** How long a JetStream request (an object's metadata, a read's consumer) may take before it
   * times out and is retried (default nats.js' 5 s). */
  requestTimeoutMs?: number;
  /** Attempts per JetStream request that fails transiently (timed out, no responders; default 4). */
  requestAttempts?: number;
}

/** Counters a caller may report as metrics. */
export interface ShardStoreStats {
  puts: number;
  putsSkipped: number;
  gets: number;
  refetches: number;
  /** Requests retried after a transient failure (timed out, no responders). */
  retries: number;
}

export class ShardStore implements ShardSink {
  readonly stats: ShardStoreStats = { puts: 0, putsSkipped: 0, gets: 0, refetches: 0, retries: 0 };

  private constructor(
    /** null when opened read-only. */
    private readonly os: ObjectStore | null,
    readonly bucket: string,
    private readonly direct: DirectGet,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly chunkBytes: number,
    private readonly nc: NatsConnection,
    private readonly requestTimeoutMs: number | undefined,
    private readonly requestAttempts: number | undefined,
  ) {}

  /**
   * Opens (creating it when allowed and missing) the shard bucket. Without the right to
   * create streams, as for workers, it binds to the existing bucket.
   */
  static async open(nc: NatsConnection | JetStreamClient, opts: ShardStoreOptions = {}): Promise<ShardStore> {
    const js = 'jetstream' in nc ? nc.jetstream(opts.requestTimeoutMs ? { timeout: opts.requestTimeoutMs } : {}) : nc;
    const bucket = opts.bucket ?? buckets.shards;
    const os = opts.readOnly ? null : await js.views.os(bucket, { replicas: opts.replicas ?? 1 });
    // checkAPI: false skips the account-info request a read-only worker may not be allowed.
    const jsm = (await js.jetstreamManager(false)) as JetStreamManager & { direct?: DirectGet };
    if (!jsm.direct) throw new Error('this nats.js has no JetStream direct get API');
    const maxPayload = 'info' in nc ? nc.info?.max_payload : undefined;
    const chunkBytes = Math.max(4096, Math.min(PUT_CHUNK_BYTES, (maxPayload ?? PUT_CHUNK_BYTES + 24 * 1024) - 24 * 1024));
    const conn = 'jetstream' in nc ? nc : (nc as unknown as { nc: NatsConnection }).nc;
    return new ShardStore(os, bucket, jsm.direct, js, jsm, chunkBytes, conn, opts.requestTimeoutMs, opts.requestAttempts);
  }

  /** Stores `bytes` under their sha256 unless an object with that key exists (idempotent). */
  async put(bytes: Uint8Array): Promise<{ sha256: string; stored: boolean }> {
    this.writable();
    const sha256 = sha256Hex(bytes);
    const info = await this.info(sha256);
    if (info && info.size === bytes.byteLength) {
      this.stats.putsSkipped++;
      return { sha256, stored: false };
    }
    await this.write(sha256, bytes);
    this.stats.puts++;
    return { sha256, stored: true };
  }

  /** Whether a shard is stored. */
  async has(sha256: string): Promise<boolean> {
    return (await this.info(sha256)) !== null;
  }

  private writable(): ObjectStore {
    if (!this.os) throw new Error(`shard store ${this.bucket} was opened read-only`);
    return this.os;
  }

  /** Retries of a transient failure (`retryNats`), counted in `stats.retries`. */
  private retryOptions() {
    return { attempts: this.requestAttempts, onRetry: () => void this.stats.retries++ };
  }

  /**
   * The object's metadata (a direct get of its last metadata message), null if absent or
   * deleted. A get that times out on a bucket that exists is retried.
   */
  private async info(key: string): Promise<ObjectMeta | null> {
    const m = await retryNats(async () => {
      try {
        return await this.direct.getMessage(`OBJ_${this.bucket}`, { last_by_subj: `$O.${this.bucket}.M.${base64UrlPadded(Buffer.from(key))}` });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        if (e.code === '404' || /no message found|message not found/i.test(e.message ?? '')) return null;
        // A direct get on a bucket that does not exist is not answered: it times out. Say so.
        if (e.code === 'TIMEOUT' && !(await this.bucketExists())) return null;
        throw err;
      }
    }, this.retryOptions());
    if (!m) return null;
    const meta = JSON.parse(new TextDecoder().decode(m.data)) as ObjectMeta;
    return meta.deleted ? null : meta;
  }

  /** Whether the bucket's stream exists (false only on a definite "stream not found"). */
  private async bucketExists(): Promise<boolean> {
    try {
      await this.jsm.streams.info(`OBJ_${this.bucket}`);
      return true;
    } catch (err) {
      return !/stream not found/i.test((err as Error).message ?? '');
    }
  }

  /**
   * The shard's bytes, verified against its key. A mismatch (or a corrupt transfer) is
   * refetched once; a second mismatch throws `ShardIntegrityError` for the caller to report.
   */
  async get(sha256: string): Promise<Uint8Array> {
    if (!SHA256_HEX.test(sha256)) throw new RangeError(`${JSON.stringify(sha256)} is not a sha256 hex key`);
    let lastProblem = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      if (attempt > 0) this.stats.refetches++;
      this.stats.gets++;
      let bytes: Uint8Array | null;
      try {
        bytes = await this.readLimit()(() => this.fetch(sha256));
      } catch (err) {
        const msg = (err as Error).message;
        if (!/corrupt|digest|chunk/i.test(msg)) throw err;
        lastProblem = msg;
        continue;
      }
      if (bytes === null) throw new ShardNotFoundError(sha256);
      const actual = sha256Hex(bytes);
      if (actual === sha256) return bytes;
      lastProblem = `bytes hash to ${actual}`;
    }
    throw new ShardIntegrityError(`shard ${sha256} failed verification twice: ${lastProblem}`, sha256);
  }

  /** The limiter of object reads shared by every store on this connection. */
  private readLimit(): LimitFunction {
    let limit = readLimits.get(this.nc);
    if (!limit) readLimits.set(this.nc, (limit = pLimit(SHARD_READS_PER_CONNECTION)));
    return limit;
  }

  /**
   * Writes an object in the JetStream object-store layout (chunks on `$O.<bucket>.C.<nuid>`,
   * then the metadata with its SHA-256 digest on `$O.<bucket>.M.<name>` as a subject rollup),
   * readable by any NATS object-store client. Done here rather than with nats.js' putBlob,
   * which hashes with a pure-JS SHA-256 (the bottleneck of imports); the digest is the native
   * one. Chunks are views on `bytes`, published concurrently.
   */
  private async write(key: string, bytes: Uint8Array): Promise<void> {
    const nuid = randomBytes(11).toString('hex');
    const chunkSubject = `$O.${this.bucket}.C.${nuid}`;
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.byteLength; at += this.chunkBytes) chunks.push(bytes.subarray(at, at + this.chunkBytes));
    try {
      await Promise.all(chunks.map((c) => this.js.publish(chunkSubject, c)));
      const info = {
        name: key,
        description: '',
        options: { max_chunk_size: this.chunkBytes },
        bucket: this.bucket,
        nuid,
        size: bytes.byteLength,
        chunks: chunks.length,
        mtime: new Date().toISOString(),
        digest: `SHA-256=${base64UrlPadded(createHash('sha256').update(bytes).digest())}`,
        deleted: false,
      };
      const h = headers();
      h.set('Nats-Rollup', 'sub');
      await this.js.publish(`$O.${this.bucket}.M.${base64UrlPadded(Buffer.from(key))}`, new TextEncoder().encode(JSON.stringify(info)), { headers: h });
    } catch (err) {
      await this.jsm.streams.purge(`OBJ_${this.bucket}`, { filter: chunkSubject }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The object's bytes: its metadata by name (a direct get), then its chunks through one consumer
   * filtered to the object's chunk subject (libs/nats-auth filtered-feed.ts), into one buffer.
   * Neither lets a reader list the bucket or read other objects, so workers' NATS users can be
   * allowed exactly this (`shardReaderPermissions`); about as fast as a direct get per chunk. This
   * skips nats.js' getBlob, whose pure-JS SHA-256 of every chunk limits it to a few tens of MB/s
   * (docs/bench/datasets.md); the caller verifies with the native sha256 instead.
   */
  private async fetch(key: string): Promise<Uint8Array | null> {
    const info = await this.info(key);
    if (!info) return null;
    const out = new Uint8Array(info.size);
    if (info.chunks === 0) return out;
    const feed = await openFilteredFeed(this.nc, `OBJ_${this.bucket}`, `$O.${this.bucket}.C.${info.nuid}`, undefined, {
      timeoutMs: this.requestTimeoutMs,
      ...this.retryOptions(),
    });
    try {
      if (feed.pending < info.chunks) throw new Error(`object ${key}: ${feed.pending} of its ${info.chunks} chunks are stored`);
      const it = feed.sub[Symbol.asyncIterator]();
      let at = 0;
      // The deadline is for data: the consumer's idle heartbeats (every 5 s) keep coming when its
      // chunks were lost (a connection cut and restored), and must not keep the read waiting.
      let deadline = performance.now() + CHUNK_WAIT_MS;
      for (let chunk = 0; chunk < info.chunks; ) {
        let timer: NodeJS.Timeout | undefined;
        const wait = Math.max(0, deadline - performance.now());
        const got = await Promise.race([it.next(), new Promise<null>((r) => (timer = setTimeout(() => r(null), wait)))]);
        clearTimeout(timer);
        if (!got || got.done) throw new Error(`object ${key}: chunk ${chunk} of ${info.chunks} did not arrive within ${CHUNK_WAIT_MS} ms`);
        const m = got.value;
        if (isStatusMessage(this.nc, m)) continue;
        if (at + m.data.byteLength > out.byteLength) throw new Error(`object ${key}: chunks exceed its size ${info.size}`);
        out.set(m.data, at);
        at += m.data.byteLength;
        chunk++;
        deadline = performance.now() + CHUNK_WAIT_MS;
      }
      if (at !== info.size) throw new Error(`object ${key}: chunks hold ${at} bytes, its size is ${info.size}`);
      return out;
    } finally {
      // The consumer's deletion need not hold up the caller (it would expire by itself).
      void feed.close();
    }
  }

  /** Removes a shard (the coordinator does so only when no dataset references it). */
  async delete(sha256: string): Promise<void> {
    const os = this.writable();
    if (await this.has(sha256)) await os.delete(sha256);
  }

  /** Deletes the whole bucket (tests and benchmarks). */
  async destroy(): Promise<void> {
    await this.writable().destroy();
  }

  /** For tests: stores arbitrary bytes under a key, bypassing content addressing. */
  async putUnchecked(key: string, bytes: Uint8Array): Promise<void> {
    await this.writable().putBlob({ name: key }, bytes);
  }
}
