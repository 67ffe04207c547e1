/**
 * Shards in the NATS JetStream object store, keyed by their sha256 (hex). The coordinator
 * puts them at import; workers get them straight from NATS with read-only credentials (the
 * coordinator never proxies shard bytes).
 */
import { buckets } from '@gradpool/protocol';
import type { JetStreamClient, NatsConnection, ObjectStore } from 'nats';
import { ShardIntegrityError, ShardNotFoundError } from './errors.js';
import { ShardSink } from './import.js';
import { sha256Hex } from './shard.codec.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Object-store chunk size for shard puts (clamped by nats.js to the server's max_payload). */
const PUT_CHUNK_BYTES = 1000 * 1024;

export interface ShardStoreOptions {
  /** Bucket name (default `buckets.shards`); tests use a unique one. */
  bucket?: string;
  /** JetStream replicas when the bucket is created (default 1). */
  replicas?: number;
}

/** Counters a caller may report as metrics. */
export interface ShardStoreStats {
  puts: number;
  putsSkipped: number;
  gets: number;
  refetches: number;
}

export class ShardStore implements ShardSink {
  readonly stats: ShardStoreStats = { puts: 0, putsSkipped: 0, gets: 0, refetches: 0 };

  private constructor(
    private readonly os: ObjectStore,
    readonly bucket: string,
  ) {}

  /**
   * Opens (creating it when allowed and missing) the shard bucket. Without the right to
   * create streams, as for workers, it binds to the existing bucket.
   */
  static async open(nc: NatsConnection | JetStreamClient, opts: ShardStoreOptions = {}): Promise<ShardStore> {
    const js = 'jetstream' in nc ? nc.jetstream() : nc;
    const bucket = opts.bucket ?? buckets.shards;
    const os = await js.views.os(bucket, { replicas: opts.replicas ?? 1 });
    return new ShardStore(os, bucket);
  }

  /** Stores `bytes` under their sha256 unless an object with that key exists (idempotent). */
  async put(bytes: Uint8Array): Promise<{ sha256: string; stored: boolean }> {
    const sha256 = sha256Hex(bytes);
    const info = await this.os.info(sha256);
    if (info && !info.deleted && info.size === bytes.byteLength) {
      this.stats.putsSkipped++;
      return { sha256, stored: false };
    }
    // Chunks near max_payload: fewer messages and acks than the 128 KiB default.
    await this.os.putBlob({ name: sha256, options: { max_chunk_size: PUT_CHUNK_BYTES } }, bytes);
    this.stats.puts++;
    return { sha256, stored: true };
  }

  /** Whether a shard is stored. */
  async has(sha256: string): Promise<boolean> {
    const info = await this.os.info(sha256);
    return info !== null && !info.deleted;
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
        bytes = await this.os.getBlob(sha256);
      } catch (err) {
        const msg = (err as Error).message;
        if (!/corrupt|digest/i.test(msg)) throw err;
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

  /** Removes a shard (the coordinator does so only when no dataset references it). */
  async delete(sha256: string): Promise<void> {
    if (await this.has(sha256)) await this.os.delete(sha256);
  }

  /** Deletes the whole bucket (tests and benchmarks). */
  async destroy(): Promise<void> {
    await this.os.destroy();
  }

  /** For tests: stores arbitrary bytes under a key, bypassing content addressing. */
  async putUnchecked(key: string, bytes: Uint8Array): Promise<void> {
    await this.os.putBlob({ name: key }, bytes);
  }
}
