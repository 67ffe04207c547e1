import { Inject, Injectable } from '@nestjs/common';
import { shardClaims, shards, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, asc, eq, sql } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type ShardRow = typeof shards.$inferSelect;
export type NewShard = typeof shards.$inferInsert;

@Injectable()
export class ShardRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async insertMany(rows: NewShard[], tx: DbOrTx = this.handle.db): Promise<void> {
    // Postgres caps a statement's parameters at 65 535; 6 columns per row.
    for (let i = 0; i < rows.length; i += 5000) await tx.insert(shards).values(rows.slice(i, i + 5000));
  }

  /** A dataset's shards by split then index. */
  listByDataset(datasetId: string, split?: ShardRow['split'], tx: DbOrTx = this.handle.db): Promise<ShardRow[]> {
    const where = split ? and(eq(shards.datasetId, datasetId), eq(shards.split, split)) : eq(shards.datasetId, datasetId);
    return tx.select().from(shards).where(where).orderBy(asc(shards.split), asc(shards.index));
  }

  /**
   * Claims the object `sha256` for the importing dataset, committed before the import stores or
   * reuses the object: from then on `releaseObject` keeps it. Taken under the object's lock, so
   * a release that decided to remove the object has removed it before the claim commits (and
   * the import's `put` then stores it again). Throws when the dataset row is gone (foreign key):
   * the import was deleted under it and must fail.
   */
  async claim(datasetId: string, sha256: string): Promise<void> {
    await this.handle.db.transaction(async (tx) => {
      await lockObject(tx, sha256);
      await tx.insert(shardClaims).values({ datasetId, sha256 }).onConflictDoNothing();
    });
  }

  /** Drops a dataset's claims; in the transaction that inserts its shard rows, which take over. */
  async dropClaims(datasetId: string, tx: DbOrTx = this.handle.db): Promise<void> {
    await tx.delete(shardClaims).where(eq(shardClaims.datasetId, datasetId));
  }

  /**
   * Removes the object `sha256` (with `remove`) when no shard row and no claim names it, deciding
   * and removing under the object's lock, so that no import claims it in between. Call it after
   * the rows and claims of the dataset letting go of the object have been deleted (committed).
   * True when it was removed.
   */
  async releaseObject(sha256: string, remove: (sha256: string) => Promise<void>): Promise<boolean> {
    return this.handle.db.transaction(async (tx) => {
      await lockObject(tx, sha256);
      const used = await tx.execute<{ used: boolean }>(
        sql`select exists (select 1 from ${shards} where ${shards.sha256} = ${sha256}) or exists (select 1 from ${shardClaims} where ${shardClaims.sha256} = ${sha256}) as used`,
      );
      if (used.rows[0]?.used) return false;
      await remove(sha256);
      return true;
    });
  }
}

/** Advisory-lock namespace of shard objects ('gpsh'); the two-int form shares no key with the app's one-bigint locks. */
const OBJECT_LOCK_CLASS = 0x67707368;

/**
 * Locks the object `sha256` until `tx` ends: its first 32 bits as the key (two objects that
 * share it only wait for each other). Each transaction holds one such lock at a time, so they
 * cannot deadlock.
 */
async function lockObject(tx: DbOrTx, sha256: string): Promise<void> {
  const key = Number.parseInt(sha256.slice(0, 8), 16) | 0;
  await tx.execute(sql`select pg_advisory_xact_lock(${OBJECT_LOCK_CLASS}, ${key})`);
}
