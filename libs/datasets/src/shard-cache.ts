/**
 * A worker's on-disk shard cache: content-addressed files `<dir>/<sha256>.shard`, a size cap,
 * least-recently-used eviction. Shared between jobs and between processes on one machine
 * (keys are content hashes; files are written to a temp name and renamed into place; recency
 * is the file's mtime, so it survives restarts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from './shard.codec.js';

export interface ShardCacheOptions {
  dir: string;
  /** Size cap in bytes (default 2 GiB). */
  maxBytes?: number;
}

interface Entry {
  bytes: number;
  /** Logical clock of the last use; larger is more recent. */
  used: number;
}

const NAME = /^([0-9a-f]{64})\.shard$/;

export class ShardCache {
  readonly maxBytes: number;
  private readonly entries = new Map<string, Entry>();
  private clock = 0;
  private total = 0;
  hits = 0;
  misses = 0;

  private constructor(readonly dir: string, maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Opens the cache directory (creating it), indexing what earlier runs left there. */
  static async open(opts: ShardCacheOptions): Promise<ShardCache> {
    const cache = new ShardCache(opts.dir, opts.maxBytes ?? 2 * 1024 ** 3);
    await mkdir(opts.dir, { recursive: true });
    const found: { key: string; bytes: number; mtime: number }[] = [];
    for (const name of await readdir(opts.dir)) {
      const m = NAME.exec(name);
      if (!m) {
        if (name.endsWith('.tmp')) await rm(join(opts.dir, name), { force: true });
        continue;
      }
      const s = await stat(join(opts.dir, name));
      found.push({ key: m[1], bytes: s.size, mtime: s.mtimeMs });
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      cache.entries.set(f.key, { bytes: f.bytes, used: ++cache.clock });
      cache.total += f.bytes;
    }
    await cache.evict();
    return cache;
  }

  /** Bytes currently cached. */
  get size(): number {
    return this.total;
  }

  has(sha256: string): boolean {
    return this.entries.has(sha256);
  }

  /** Keys from least to most recently used. */
  keys(): string[] {
    return [...this.entries.entries()].sort((a, b) => a[1].used - b[1].used).map(([k]) => k);
  }

  private path(sha256: string): string {
    return join(this.dir, `${sha256}.shard`);
  }

  /** Cached bytes (verified; a corrupt file is dropped) or null. */
  async get(sha256: string): Promise<Uint8Array | null> {
    const e = this.entries.get(sha256);
    if (!e) return null;
    let bytes: Uint8Array;
    try {
      const buf = await readFile(this.path(sha256));
      bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch {
      this.forget(sha256);
      return null;
    }
    if (sha256Hex(bytes) !== sha256) {
      await this.remove(sha256);
      return null;
    }
    e.used = ++this.clock;
    const now = new Date();
    await utimes(this.path(sha256), now, now).catch(() => undefined);
    return bytes;
  }

  /** Adds verified bytes under their key and evicts least-recently-used shards over the cap. */
  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength > this.maxBytes) return;
    if (!this.entries.has(sha256)) {
      const tmp = join(this.dir, `${sha256}.${randomBytes(4).toString('hex')}.tmp`);
      await writeFile(tmp, bytes);
      await rename(tmp, this.path(sha256));
      this.entries.set(sha256, { bytes: bytes.byteLength, used: ++this.clock });
      this.total += bytes.byteLength;
    } else this.entries.get(sha256)!.used = ++this.clock;
    await this.evict(sha256);
  }

  /** The shard from the cache, or from `fetch` (which must verify it), then cached. */
  async getOrFetch(sha256: string, fetch: (sha256: string) => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = await this.get(sha256);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const bytes = await fetch(sha256);
    await this.put(sha256, bytes);
    return bytes;
  }

  private forget(sha256: string): void {
    const e = this.entries.get(sha256);
    if (!e) return;
    this.entries.delete(sha256);
    this.total -= e.bytes;
  }

  private async remove(sha256: string): Promise<void> {
    this.forget(sha256);
    await rm(this.path(sha256), { force: true });
  }

  private async evict(keep?: string): Promise<void> {
    if (this.total <= this.maxBytes) return;
    for (const key of this.keys()) {
      if (this.total <= this.maxBytes) break;
      if (key !== keep) await this.remove(key);
    }
  }
}
