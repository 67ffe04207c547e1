import { Inject, Injectable } from '@nestjs/common';
import { events, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, desc, eq, sql } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type EventRow = typeof events.$inferSelect;
export type NewEvent = typeof events.$inferInsert;

/** The append-only events log. */
@Injectable()
export class EventRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async insert(values: NewEvent | NewEvent[], tx: DbOrTx = this.handle.db): Promise<void> {
    const rows = Array.isArray(values) ? values : [values];
    if (rows.length > 0) await tx.insert(events).values(rows);
  }

  /**
   * How many `job.fault` events of `kind` a worker has in a job since an admin last readmitted
   * it there (`job.readmitted`): the repeats that lengthen its next exclusion, the same on every
   * replica and after a restart.
   */
  async faultsSinceReadmit(jobId: string, workerId: string, kind: string, tx: DbOrTx = this.handle.db): Promise<number> {
    const { rows } = await tx.execute<{ n: number }>(sql`
      select count(*)::int as n from ${events}
      where ${events.jobId} = ${jobId} and ${events.workerId} = ${workerId} and ${events.type} = 'job.fault' and ${events.data}->>'kind' = ${kind}
        and ${events.id} > coalesce((select max(${events.id}) from ${events} where ${events.jobId} = ${jobId} and ${events.workerId} = ${workerId} and ${events.type} = 'job.readmitted'), 0)`);
    return Number(rows[0]?.n ?? 0);
  }

  listForWorker(workerId: string, opts: { type?: string; limit?: number } = {}, tx: DbOrTx = this.handle.db): Promise<EventRow[]> {
    const where = opts.type ? and(eq(events.workerId, workerId), eq(events.type, opts.type)) : eq(events.workerId, workerId);
    return tx.select().from(events).where(where).orderBy(desc(events.id)).limit(opts.limit ?? 100);
  }
}
