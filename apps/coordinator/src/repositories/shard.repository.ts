import { Inject, Injectable } from '@nestjs/common';
import { shards, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, asc, eq, inArray, ne } from 'drizzle-orm';
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

  /** Of `hashes`, those referenced by a shard row of a dataset other than `exceptDatasetId`. */
  async referenced(hashes: readonly string[], exceptDatasetId?: string, tx: DbOrTx = this.handle.db): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < hashes.length; i += 5000) {
      const chunk = [...hashes.slice(i, i + 5000)];
      const where = exceptDatasetId
        ? and(inArray(shards.sha256, chunk), ne(shards.datasetId, exceptDatasetId))
        : inArray(shards.sha256, chunk);
      for (const r of await tx.selectDistinct({ sha256: shards.sha256 }).from(shards).where(where)) out.add(r.sha256);
    }
    return out;
  }
}
