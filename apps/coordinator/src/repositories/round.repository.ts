import { Inject, Injectable } from '@nestjs/common';
import { rounds, shardProgress, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, asc, desc, eq, gte, sql } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type RoundRow = typeof rounds.$inferSelect;
export type NewRound = typeof rounds.$inferInsert;

/** Committed rounds and the shard progress they carry. */
@Injectable()
export class RoundRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async insert(row: NewRound, tx: DbOrTx = this.handle.db): Promise<void> {
    await tx.insert(rounds).values(row);
  }

  list(jobId: string, opts: { from?: number; limit?: number } = {}, tx: DbOrTx = this.handle.db): Promise<RoundRow[]> {
    return tx
      .select()
      .from(rounds)
      .where(and(eq(rounds.jobId, jobId), gte(rounds.round, opts.from ?? 0)))
      .orderBy(asc(rounds.round))
      .limit(opts.limit ?? 10_000);
  }

  recent(jobId: string, limit: number, tx: DbOrTx = this.handle.db): Promise<RoundRow[]> {
    return tx.select().from(rounds).where(eq(rounds.jobId, jobId)).orderBy(desc(rounds.round)).limit(limit);
  }

  /** Sets shards' processed counts (never lowers them). */
  async setProgress(
    jobId: string,
    dataEpoch: number,
    entries: { shard: number; processed: number; total: number; workerId: string | null }[],
    round: number,
    tx: DbOrTx = this.handle.db,
  ): Promise<void> {
    if (!entries.length) return;
    await tx
      .insert(shardProgress)
      .values(
        entries.map((e) => ({
          jobId,
          dataEpoch,
          shardIndex: e.shard,
          status: e.processed >= e.total ? ('processed' as const) : ('dealt' as const),
          workerId: e.workerId,
          round,
          processedSamples: e.processed,
        })),
      )
      .onConflictDoUpdate({
        target: [shardProgress.jobId, shardProgress.dataEpoch, shardProgress.shardIndex],
        set: {
          processedSamples: sql`greatest(${shardProgress.processedSamples}, excluded.processed_samples)`,
          status: sql`excluded.status`,
          workerId: sql`excluded.worker_id`,
          round: sql`excluded.round`,
          updatedAt: sql`now()`,
        },
      });
  }
}
