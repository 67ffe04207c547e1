import { Inject, Injectable } from '@nestjs/common';
import { jobs, jobStatus, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type JobRow = typeof jobs.$inferSelect;
export type NewJob = typeof jobs.$inferInsert;
export type JobStatus = (typeof jobStatus.enumValues)[number];

/** Jobs. `advanceRound` is the exactly-once guard of round commits. */
@Injectable()
export class JobRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  get db(): DbHandle['db'] {
    return this.handle.db;
  }

  async insert(values: NewJob, tx: DbOrTx = this.handle.db): Promise<JobRow> {
    const [row] = await tx.insert(jobs).values(values).returning();
    return row;
  }

  async findById(id: string, tx: DbOrTx = this.handle.db): Promise<JobRow | undefined> {
    const [row] = await tx.select().from(jobs).where(eq(jobs.id, id));
    return row;
  }

  list(filter: { groupIds?: string[]; status?: JobStatus[] } = {}, tx: DbOrTx = this.handle.db): Promise<JobRow[]> {
    const conds = [];
    if (filter.groupIds) conds.push(inArray(jobs.groupId, filter.groupIds.length ? filter.groupIds : ['00000000-0000-0000-0000-000000000000']));
    if (filter.status) conds.push(inArray(jobs.status, filter.status));
    return tx
      .select()
      .from(jobs)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(jobs.createdAt));
  }

  async update(id: string, values: Partial<NewJob>, tx: DbOrTx = this.handle.db): Promise<JobRow | undefined> {
    const [row] = await tx.update(jobs).set(values).where(eq(jobs.id, id)).returning();
    return row;
  }

  /** Changes the status only from one of `from`; undefined when the job was in another state. */
  async transition(id: string, from: JobStatus[], values: Partial<NewJob> & { status: JobStatus }, tx: DbOrTx = this.handle.db): Promise<JobRow | undefined> {
    const [row] = await tx
      .update(jobs)
      .set(values)
      .where(and(eq(jobs.id, id), inArray(jobs.status, from)))
      .returning();
    return row;
  }

  /**
   * jobs.round: r-1 → r and samples += n, only if the job is at r-1 (false otherwise: the round
   * was committed already, by us or by another keeper).
   */
  /** Commits `round` (only if `round − 1` was the last) with its samples and the data state after it. */
  async advanceRound(id: string, round: number, samples: number, data: { epoch: number; state: string }, tx: DbOrTx = this.handle.db): Promise<boolean> {
    const rows = await tx
      .update(jobs)
      .set({ round, samplesProcessed: sql`${jobs.samplesProcessed} + ${samples}`, dataEpoch: data.epoch, dataState: data.state })
      .where(and(eq(jobs.id, id), eq(jobs.round, round - 1)))
      .returning({ id: jobs.id });
    return rows.length === 1;
  }
}
