import { Inject, Injectable } from '@nestjs/common';
import { checkpoints, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, desc, eq, lte } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type CheckpointRow = typeof checkpoints.$inferSelect;
export type NewCheckpoint = typeof checkpoints.$inferInsert;

/** Checkpoints' metadata (the bytes are in the job's bucket). */
@Injectable()
export class CheckpointRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  /** Inserts or replaces the row of (job, round). */
  async upsert(row: NewCheckpoint, tx: DbOrTx = this.handle.db): Promise<CheckpointRow> {
    const [r] = await tx
      .insert(checkpoints)
      .values(row)
      .onConflictDoUpdate({
        target: [checkpoints.jobId, checkpoints.round],
        set: { bytes: row.bytes, sha256: row.sha256, paramHash: row.paramHash, objectKey: row.objectKey, bucket: row.bucket },
      })
      .returning();
    return r;
  }

  list(jobId: string, tx: DbOrTx = this.handle.db): Promise<CheckpointRow[]> {
    return tx.select().from(checkpoints).where(eq(checkpoints.jobId, jobId)).orderBy(desc(checkpoints.round));
  }

  /** The newest checkpoint at or before `round` (any when absent). */
  async latest(jobId: string, round?: number, tx: DbOrTx = this.handle.db): Promise<CheckpointRow | undefined> {
    const where = round === undefined ? eq(checkpoints.jobId, jobId) : and(eq(checkpoints.jobId, jobId), lte(checkpoints.round, round));
    const [r] = await tx.select().from(checkpoints).where(where).orderBy(desc(checkpoints.round)).limit(1);
    return r;
  }
}
