import { Inject, Injectable } from '@nestjs/common';
import { jobExclusions, jobs, workers, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, asc, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type ExclusionRow = typeof jobExclusions.$inferSelect;

/** An exclusion in force, with its worker's name. */
export interface ActiveExclusion extends ExclusionRow {
  workerName: string;
}

/** An exclusion in force: for good, or not over yet. */
const inForce = () => or(isNull(jobExclusions.until), gt(jobExclusions.until, sql`now()`));

/** Workers kept out of jobs (`job_exclusions`): after a fault for a while, after a failed owner audit for good. */
@Injectable()
export class ExclusionRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  /**
   * Keeps `workerId` out of `jobId` until `until` (null: for good). A ban stays a ban: a later,
   * shorter exclusion does not replace it.
   */
  async put(e: { jobId: string; workerId: string; kind: string; reason: string; until: Date | null }, tx: DbOrTx = this.handle.db): Promise<void> {
    await tx
      .insert(jobExclusions)
      .values({ ...e, since: new Date() })
      .onConflictDoUpdate({
        target: [jobExclusions.jobId, jobExclusions.workerId],
        set: { kind: sql`excluded.kind`, reason: sql`excluded.reason`, since: sql`excluded.since`, until: sql`excluded.until` },
        setWhere: sql`${jobExclusions.until} is not null`,
      });
  }

  /** `job/worker` keys of every exclusion in force now (one query a scheduling pass). */
  async activeKeys(tx: DbOrTx = this.handle.db): Promise<Set<string>> {
    const rows = await tx
      .select({ jobId: jobExclusions.jobId, workerId: jobExclusions.workerId })
      .from(jobExclusions)
      .where(inForce());
    return new Set(rows.map((r) => `${r.jobId}/${r.workerId}`));
  }

  /** A job's exclusions in force, oldest first. */
  async active(jobId: string, tx: DbOrTx = this.handle.db): Promise<ActiveExclusion[]> {
    const rows = await tx
      .select({ e: jobExclusions, workerName: workers.name })
      .from(jobExclusions)
      .innerJoin(workers, eq(workers.id, jobExclusions.workerId))
      .where(and(eq(jobExclusions.jobId, jobId), inForce()))
      .orderBy(asc(jobExclusions.since));
    return rows.map((r) => ({ ...r.e, workerName: r.workerName }));
  }

  /** The jobs a worker is kept out of now, with their names, newest first. */
  async ofWorker(workerId: string, tx: DbOrTx = this.handle.db): Promise<(ExclusionRow & { jobName: string })[]> {
    const rows = await tx
      .select({ e: jobExclusions, jobName: jobs.name })
      .from(jobExclusions)
      .innerJoin(jobs, eq(jobs.id, jobExclusions.jobId))
      .where(and(eq(jobExclusions.workerId, workerId), inForce()))
      .orderBy(desc(jobExclusions.since));
    return rows.map((r) => ({ ...r.e, jobName: r.jobName }));
  }

  /** Removes a worker's exclusion from a job; what was removed if it was in force. */
  async remove(jobId: string, workerId: string, tx: DbOrTx = this.handle.db): Promise<ExclusionRow | undefined> {
    const [row] = await tx
      .delete(jobExclusions)
      .where(and(eq(jobExclusions.jobId, jobId), eq(jobExclusions.workerId, workerId)))
      .returning();
    return row && (row.until === null || row.until.getTime() > Date.now()) ? row : undefined;
  }
}
