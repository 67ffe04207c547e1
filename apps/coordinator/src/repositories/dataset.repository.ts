import { Inject, Injectable } from '@nestjs/common';
import { datasets, jobs, shardClaims, shards, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import pg from 'pg';
import { isUuid } from '../secrets.js';
import { DATABASE } from '../tokens.js';
import type { JobStatus } from './job.repository.js';

export type DatasetRow = typeof datasets.$inferSelect;
export type NewDataset = typeof datasets.$inferInsert;

/** Advisory-lock namespace of running imports ('gpim'); two-int keys share none with the app's one-bigint locks. */
const IMPORT_LOCK_CLASS = 0x6770696d;
/** The import lock's key for a dataset: the first 32 bits of its (random) uuid, as an int4. */
const importKey = (id: string): number => Number.parseInt(id.replace(/-/g, '').slice(0, 8), 16) | 0;

/** Job states in which a job may still run: its dataset must stay. */
export const LIVE_JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'paused'];

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

  /** Undefined for null: a job whose dataset was deleted reads as one whose dataset is gone. */
  async findById(id: string | null, tx: DbOrTx = this.handle.db): Promise<DatasetRow | undefined> {
    if (id === null || !isUuid(id)) return undefined;
    const [row] = await tx.select().from(datasets).where(eq(datasets.id, id)).limit(1);
    return row;
  }

  /**
   * The dataset row locked FOR UPDATE until `tx` ends. A job insert that references it checks
   * the foreign key with a KEY SHARE lock, so it waits for this transaction, and one already in
   * flight commits first: a check of the dataset's jobs after this lock misses none.
   */
  async lockById(id: string, tx: DbOrTx): Promise<DatasetRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await tx.select().from(datasets).where(eq(datasets.id, id)).for('update');
    return row;
  }

  /**
   * Marks the import of dataset `id` as running, from before its row exists until the returned
   * release is called: a session advisory lock (shared, so two imports whose keys collide both
   * run) on a connection of its own. When the coordinator dies, Postgres ends the session and
   * the lock goes with it, which is how `importRunning` tells a crashed import from a live one.
   */
  async holdImportLease(id: string): Promise<() => Promise<void>> {
    const client = new pg.Client({ ...this.handle.pool.options, application_name: 'gradpool-import-lease' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query('select pg_advisory_lock_shared($1, $2)', [IMPORT_LOCK_CLASS, importKey(id)]);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return () => client.end().catch(() => undefined);
  }

  /**
   * Whether an import of dataset `id` is running (its lease is held), in `tx`. When not, the
   * exclusive lock taken here keeps a new lease out until `tx` ends.
   */
  async importRunning(id: string, tx: DbOrTx): Promise<boolean> {
    const r = await tx.execute<{ ok: boolean }>(sql`select pg_try_advisory_xact_lock(${IMPORT_LOCK_CLASS}, ${importKey(id)}) as ok`);
    return !r.rows[0]?.ok;
  }

  /** The objects an import of the dataset has claimed and not yet turned into shard rows. */
  async claimedObjects(id: string, tx: DbOrTx = this.handle.db): Promise<string[]> {
    const rows = await tx.select({ sha256: shardClaims.sha256 }).from(shardClaims).where(eq(shardClaims.datasetId, id));
    return rows.map((r) => r.sha256);
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

  /**
   * Deletes the dataset. Its shard rows and claims go with it (on delete cascade); its jobs stay, with
   * dataset_id set to null (on delete set null), keeping their rounds, metrics and credits.
   */
  async delete(id: string, tx: DbOrTx = this.handle.db): Promise<boolean> {
    const rows = await tx.delete(datasets).where(eq(datasets.id, id)).returning({ id: datasets.id });
    return rows.length > 0;
  }

  /**
   * The live jobs (queued, running, paused) that use the dataset, oldest first. A job that has
   * ended (completed, failed, cancelled) never runs again, so it does not hold the dataset.
   */
  liveJobsUsing(id: string, tx: DbOrTx = this.handle.db): Promise<{ id: string; name: string; status: JobStatus }[]> {
    return tx
      .select({ id: jobs.id, name: jobs.name, status: jobs.status })
      .from(jobs)
      .where(and(eq(jobs.datasetId, id), inArray(jobs.status, [...LIVE_JOB_STATUSES])))
      .orderBy(asc(jobs.createdAt));
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
