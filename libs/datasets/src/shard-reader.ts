/**
 * What a worker uses to read its dealt shards: the local cache first, then the object store
 * (hash-verified, refetched once on mismatch), decoded into typed arrays. A
 * `ShardIntegrityError` from here is for the worker to report to the coordinator.
 */
import { decodeShard, type DecodedShard } from './shard.codec.js';
import type { ShardCache } from './shard-cache.js';
import type { ShardStore } from './shard-store.js';

export class ShardReader {
  constructor(
    private readonly store: Pick<ShardStore, 'get'>,
    private readonly cache?: ShardCache,
  ) {}

  /** The shard's verified bytes. */
  async bytes(sha256: string): Promise<Uint8Array> {
    return this.cache ? this.cache.getOrFetch(sha256, (k) => this.store.get(k)) : this.store.get(sha256);
  }

  /** The shard decoded (typed-array views on its bytes). */
  async read(sha256: string): Promise<DecodedShard> {
    return decodeShard(await this.bytes(sha256));
  }
}
