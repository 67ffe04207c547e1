import { Inject, Injectable } from '@nestjs/common';
import { credits, type DbHandle, type DbOrTx } from '@gradpool/db';
import { desc, eq, sql } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type CreditRow = typeof credits.$inferSelect;

export interface CreditDelta {
  workerId: string;
  groupId: string;
  samples: number;
  computeMs: number;
  rounds: number;
}

/** Volunteer credit per (job, worker). */
@Injectable()
export class CreditRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async add(jobId: string, deltas: CreditDelta[], tx: DbOrTx = this.handle.db): Promise<void> {
    if (!deltas.length) return;
    await tx
      .insert(credits)
      .values(deltas.map((d) => ({ jobId, ...d })))
      .onConflictDoUpdate({
        target: [credits.jobId, credits.workerId],
        set: {
          samples: sql`${credits.samples} + excluded.samples`,
          computeMs: sql`${credits.computeMs} + excluded.compute_ms`,
          rounds: sql`${credits.rounds} + excluded.rounds`,
          updatedAt: sql`now()`,
        },
      });
  }

  list(jobId: string, tx: DbOrTx = this.handle.db): Promise<CreditRow[]> {
    return tx.select().from(credits).where(eq(credits.jobId, jobId)).orderBy(desc(credits.samples));
  }
}
