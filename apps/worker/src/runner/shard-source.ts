/**
 * The train split's shards as a runner needs them: fetched from the object store through the
 * local cache (both verify the sha256 the shard is named by; the store refetches a mismatch
 * once), decoded once, and kept in memory while the member's pieces use them.
 */
import { decodeShard, ShardCache, ShardStore, type ShardArrays } from '@gradpool/datasets';
import type { NatsConnection } from 'nats';
import { FaultKinds, RunnerFault } from './faults.js';

/** What the job spec says of one shard of the train split. */
export interface ShardMeta {
  index: number;
  sha256: string;
  samples: number;
}

export interface ShardSourceOptions {
  nc: NatsConnection;
  shards: readonly ShardMeta[];
  /** Features per sample the model expects. */
  featureSize: number;
  /** Object-store bucket of shards (default the shared one). */
  bucket?: string;
  /** The worker's shard cache (shared between jobs); none: straight from the store. */
  cache?: ShardCache | null;
}

export class ShardSource {
  private readonly meta = new Map<number, ShardMeta>();
  private readonly loaded = new Map<number, ShardArrays>();
  private readonly loading = new Map<number, Promise<ShardArrays>>();
  private store: Promise<ShardStore> | null = null;
  /** Bytes fetched from the store (cache misses). */
  bytesFetched = 0;

  constructor(private readonly opts: ShardSourceOptions) {
    for (const s of opts.shards) this.meta.set(s.index, s);
  }

  private openStore(): Promise<ShardStore> {
    this.store ??= ShardStore.open(this.opts.nc, { bucket: this.opts.bucket, readOnly: true });
    return this.store;
  }

  /** A decoded shard that `ensure` loaded (gatherBatch's `shardOf`). */
  get(index: number): ShardArrays {
    const s = this.loaded.get(index);
    if (!s) throw new RangeError(`shard ${index} is not loaded`);
    return s;
  }

  /** Loads the shards (in parallel); throws RunnerFault 'bad-shard' for one that fails. */
  async ensure(indexes: Iterable<number>): Promise<void> {
    await Promise.all([...new Set(indexes)].map((i) => this.load(i)));
  }

  /** Starts loading in the background (errors surface at the next `ensure`). */
  prefetch(indexes: Iterable<number>): void {
    for (const i of indexes) this.load(i).catch(() => undefined);
  }

  /** Frees decoded shards not in `keep`. */
  retain(keep: Iterable<number>): void {
    const k = new Set(keep);
    for (const i of [...this.loaded.keys()]) if (!k.has(i)) this.loaded.delete(i);
  }

  private load(index: number): Promise<ShardArrays> {
    const have = this.loaded.get(index);
    if (have) return Promise.resolve(have);
    let p = this.loading.get(index);
    if (!p) {
      p = this.fetchDecode(index).then(
        (s) => {
          this.loading.delete(index);
          this.loaded.set(index, s);
          return s;
        },
        (err: unknown) => {
          this.loading.delete(index);
          throw err;
        },
      );
      this.loading.set(index, p);
    }
    return p;
  }

  private async fetchDecode(index: number): Promise<ShardArrays> {
    const m = this.meta.get(index);
    if (!m) throw new RunnerFault(FaultKinds.badShard, `shard ${index} was dealt but is not in the job's train split`);
    let bytes: Uint8Array;
    try {
      const fetch = async (key: string) => {
        const b = await (await this.openStore()).get(key);
        this.bytesFetched += b.byteLength;
        return b;
      };
      bytes = this.opts.cache ? await this.opts.cache.getOrFetch(m.sha256, fetch) : await fetch(m.sha256);
    } catch (err) {
      const e = err as Error;
      if (e.name === 'ShardIntegrityError' || e.name === 'ShardNotFoundError') throw new RunnerFault(FaultKinds.badShard, `shard ${index}: ${e.message}`);
      throw err;
    }
    let d;
    try {
      d = decodeShard(bytes);
    } catch (err) {
      throw new RunnerFault(FaultKinds.badShard, `shard ${index} (${m.sha256}) does not decode: ${(err as Error).message}`);
    }
    if (d.count !== m.samples || d.dim !== this.opts.featureSize) {
      throw new RunnerFault(
        FaultKinds.badShard,
        `shard ${index} holds ${d.count} samples of ${d.dim} features; the job expects ${m.samples} of ${this.opts.featureSize}`,
      );
    }
    return { dim: d.dim, count: d.count, features: d.features, labels: d.labels };
  }
}
