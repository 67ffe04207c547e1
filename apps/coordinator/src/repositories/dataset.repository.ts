import { Inject, Injectable } from '@nestjs/common';
import { datasets, jobs, shards, type DbHandle, type DbOrTx } from '@gradpool/db';
import { asc, eq, sql } from 'drizzle-orm';
import { isUuid } from '../secrets.js';
import { DATABASE } from '../tokens.js';

export type DatasetRow = typeof datasets.$inferSelect;
export type NewDataset = typeof datasets.$inferInsert;

export interface SplitCount {
  datasetId: string;
  split: 'train' | 'validation' | 'test';
  samples: number;
  shards: number;
}

@Injectable()
export class DatasetRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  /** Inserts a dataset; undefined when the name is taken. */
  async insert(values: NewDataset, tx: DbOrTx = this.handle.db): Promise<DatasetRow | undefined> {
    const [row] = await tx.insert(datasets).values(values).onConflictDoNothing({ target: datasets.name }).returning();
    return row;
  }

  async findById(id: string, tx: DbOrTx = this.handle.db): Promise<DatasetRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await tx.select().from(datasets).where(eq(datasets.id, id)).limit(1);
    return row;
  }

  async findByName(name: string, tx: DbOrTx = this.handle.db): Promise<DatasetRow | undefined> {
    const [row] = await tx.select().from(datasets).where(eq(datasets.name, name)).limit(1);
    return row;
  }

  list(tx: DbOrTx = this.handle.db): Promise<DatasetRow[]> {
    return tx.select().from(datasets).orderBy(asc(datasets.createdAt), asc(datasets.name));
  }

  async update(id: string, values: Partial<NewDataset>, tx: DbOrTx = this.handle.db): Promise<DatasetRow | undefined> {
    const [row] = await tx.update(datasets).set(values).where(eq(datasets.id, id)).returning();
    return row;
  }

  /** Deletes the dataset (its shard rows go with it: on delete cascade). */
  async delete(id: string, tx: DbOrTx = this.handle.db): Promise<boolean> {
    const rows = await tx.delete(datasets).where(eq(datasets.id, id)).returning({ id: datasets.id });
    return rows.length > 0;
  }

  /** Ids of the jobs that reference the dataset. */
  async jobsUsing(id: string, tx: DbOrTx = this.handle.db): Promise<string[]> {
    const rows = await tx.select({ id: jobs.id }).from(jobs).where(eq(jobs.datasetId, id));
    return rows.map((r) => r.id);
  }

  /** Samples and shards per (dataset, split). */
  async splitCounts(datasetId?: string, tx: DbOrTx = this.handle.db): Promise<SplitCount[]> {
    const q = tx
      .select({
        datasetId: shards.datasetId,
        split: shards.split,
        samples: sql<number>`sum(${shards.sampleCount})::int`,
        shards: sql<number>`count(*)::int`,
      })
      .from(shards);
    const filtered = datasetId ? q.where(eq(shards.datasetId, datasetId)) : q;
    return filtered.groupBy(shards.datasetId, shards.split);
  }
}
