import { Inject, Injectable } from '@nestjs/common';
import { rosterMembers, rosters, workers, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, asc, desc, eq, inArray, isNull } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type RosterRow = typeof rosters.$inferSelect;
export type RosterMemberRow = typeof rosterMembers.$inferSelect;
export type NewRosterMember = typeof rosterMembers.$inferInsert;

export interface RosterWithMembers extends RosterRow {
  members: RosterMemberRow[];
}

/** Membership epochs of jobs. */
@Injectable()
export class RosterRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async insert(roster: typeof rosters.$inferInsert, members: NewRosterMember[], tx: DbOrTx = this.handle.db): Promise<void> {
    await tx.insert(rosters).values(roster);
    if (members.length) await tx.insert(rosterMembers).values(members);
  }

  /** The newest epoch of a job with its members in index order. */
  async latest(jobId: string, tx: DbOrTx = this.handle.db): Promise<RosterWithMembers | undefined> {
    const [r] = await tx.select().from(rosters).where(eq(rosters.jobId, jobId)).orderBy(desc(rosters.epoch)).limit(1);
    if (!r) return undefined;
    return { ...r, members: await this.members(jobId, r.epoch, tx) };
  }

  async get(jobId: string, epoch: number, tx: DbOrTx = this.handle.db): Promise<RosterWithMembers | undefined> {
    const [r] = await tx.select().from(rosters).where(and(eq(rosters.jobId, jobId), eq(rosters.epoch, epoch)));
    if (!r) return undefined;
    return { ...r, members: await this.members(jobId, r.epoch, tx) };
  }

  members(jobId: string, epoch: number, tx: DbOrTx = this.handle.db): Promise<RosterMemberRow[]> {
    return tx
      .select()
      .from(rosterMembers)
      .where(and(eq(rosterMembers.jobId, jobId), eq(rosterMembers.epoch, epoch)))
      .orderBy(asc(rosterMembers.index));
  }

  /** Every epoch of a job, oldest first (without members). */
  list(jobId: string, tx: DbOrTx = this.handle.db): Promise<RosterRow[]> {
    return tx.select().from(rosters).where(eq(rosters.jobId, jobId)).orderBy(asc(rosters.epoch));
  }

  /** Workers currently assigned to a job (workers.current_job_id), by id. */
  assigned(jobId: string, tx: DbOrTx = this.handle.db): Promise<(typeof workers.$inferSelect)[]> {
    return tx.select().from(workers).where(eq(workers.currentJobId, jobId)).orderBy(asc(workers.id));
  }

  /** Online workers with no job. */
  idle(tx: DbOrTx = this.handle.db): Promise<(typeof workers.$inferSelect)[]> {
    return tx
      .select()
      .from(workers)
      .where(and(eq(workers.status, 'online'), isNull(workers.currentJobId)))
      .orderBy(asc(workers.registeredAt));
  }

  async setAssignment(workerIds: string[], jobId: string | null, tx: DbOrTx = this.handle.db): Promise<void> {
    if (!workerIds.length) return;
    await tx.update(workers).set({ currentJobId: jobId }).where(inArray(workers.id, workerIds));
  }

  /** The job each of `workerIds` is assigned, for those that have one. */
  async currentJobs(workerIds: string[], tx: DbOrTx = this.handle.db): Promise<{ workerId: string; jobId: string }[]> {
    if (!workerIds.length) return [];
    const rows = await tx.select({ workerId: workers.id, jobId: workers.currentJobId }).from(workers).where(inArray(workers.id, workerIds));
    return rows.flatMap((r) => (r.jobId ? [{ workerId: r.workerId, jobId: r.jobId }] : []));
  }

  /** Clears the assignment of every worker of a job. */
  async clearJob(jobId: string, tx: DbOrTx = this.handle.db): Promise<void> {
    await tx.update(workers).set({ currentJobId: null }).where(eq(workers.currentJobId, jobId));
  }
}
