import { Inject, Injectable } from '@nestjs/common';
import { events, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, desc, eq } from 'drizzle-orm';
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

  listForWorker(workerId: string, opts: { type?: string; limit?: number } = {}, tx: DbOrTx = this.handle.db): Promise<EventRow[]> {
    const where = opts.type ? and(eq(events.workerId, workerId), eq(events.type, opts.type)) : eq(events.workerId, workerId);
    return tx.select().from(events).where(where).orderBy(desc(events.id)).limit(opts.limit ?? 100);
  }
}
