import { Inject, Injectable } from '@nestjs/common';
import { workers, workerStatus, type DbHandle, type DbOrTx, type WorkerCapabilities } from '@gradpool/db';
import { and, asc, eq, gt, inArray, lt, sql, type SQL } from 'drizzle-orm';
import { isUuid } from '../secrets.js';
import { DATABASE } from '../tokens.js';

export type WorkerRow = typeof workers.$inferSelect;
export type NewWorker = typeof workers.$inferInsert;
export type WorkerStatus = (typeof workerStatus.enumValues)[number];

/** `now() + ms` computed by the database, so that every replica agrees on one clock. */
const nowPlus = (ms: number): SQL => sql`now() + (${ms} * interval '1 millisecond')`;

export interface HeartbeatUpdate {
  leaseMs: number;
  state?: string;
  statusText?: string;
}

@Injectable()
export class WorkerRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async insert(values: Omit<NewWorker, 'lastSeenAt' | 'leaseExpiresAt'>, leaseMs: number, tx: DbOrTx = this.handle.db): Promise<WorkerRow> {
    const [row] = await tx
      .insert(workers)
      .values({ ...values, lastSeenAt: sql`now()`, leaseExpiresAt: nowPlus(leaseMs) })
      .returning();
    return row;
  }

  async findById(id: string, tx: DbOrTx = this.handle.db): Promise<WorkerRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await tx.select().from(workers).where(eq(workers.id, id)).limit(1);
    return row;
  }

  list(filter: { groupId?: string; status?: WorkerStatus } = {}, tx: DbOrTx = this.handle.db): Promise<WorkerRow[]> {
    const conds: SQL[] = [];
    if (filter.groupId) conds.push(eq(workers.groupId, filter.groupId));
    if (filter.status) conds.push(eq(workers.status, filter.status));
    return tx
      .select()
      .from(workers)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(asc(workers.registeredAt), asc(workers.id));
  }

  /**
   * Gives a worker whose lease is still running a new secret and fresh capabilities
   * (re-registration keeping its identity). undefined when the lease has expired.
   */
  async reidentify(
    id: string,
    values: { name: string; capabilities: WorkerCapabilities; secretHash: string },
    leaseMs: number,
    tx: DbOrTx = this.handle.db,
  ): Promise<WorkerRow | undefined> {
    const [row] = await tx
      .update(workers)
      .set({ ...values, lastSeenAt: sql`now()`, leaseExpiresAt: nowPlus(leaseMs) })
      .where(and(eq(workers.id, id), gt(workers.leaseExpiresAt, sql`now()`)))
      .returning();
    return row;
  }

  /**
   * A sign of life (session opened, heartbeat): refreshes last-seen and the lease, and brings
   * an offline worker back online. A draining worker stays draining; a drained one is not
   * touched (undefined). Returns the status before and after.
   */
  async heartbeat(
    id: string,
    u: HeartbeatUpdate,
    tx: DbOrTx = this.handle.db,
  ): Promise<{ groupId: string; before: WorkerStatus; after: WorkerStatus } | undefined> {
    const state = u.state ?? null;
    const statusText = u.statusText ?? null;
    const res = await tx.execute<{ group_id: string; before: WorkerStatus; after: WorkerStatus }>(sql`
      update ${workers} w
         set status = case when p.status = 'offline' then 'online'::worker_status else p.status end,
             last_seen_at = now(),
             lease_expires_at = ${nowPlus(u.leaseMs)},
             state = coalesce(${state}, w.state),
             status_text = coalesce(${statusText}, w.status_text)
        from (select id, status from ${workers} where id = ${id} for update) p
       where w.id = p.id and p.status <> 'drained'
   returning w.group_id, p.status as before, w.status as after`);
    const [row] = res.rows;
    return row ? { groupId: row.group_id, before: row.before, after: row.after } : undefined;
  }

  /** Marks offline the workers not seen for `silenceMs`; returns them. */
  markSilentOffline(silenceMs: number, tx: DbOrTx = this.handle.db): Promise<{ id: string; groupId: string }[]> {
    return tx
      .update(workers)
      .set({ status: 'offline' })
      .where(and(inArray(workers.status, ['online', 'draining']), lt(workers.lastSeenAt, sql`now() - (${silenceMs} * interval '1 millisecond')`)))
      .returning({ id: workers.id, groupId: workers.groupId });
  }

  /** online → draining; undefined when the worker is not online. */
  async markDraining(id: string, tx: DbOrTx = this.handle.db): Promise<WorkerRow | undefined> {
    const [row] = await tx
      .update(workers)
      .set({ status: 'draining', state: 'draining' })
      .where(and(eq(workers.id, id), eq(workers.status, 'online')))
      .returning();
    return row;
  }

  /** The worker left cleanly: drained, and its lease ends now (its secret no longer opens a session). */
  async markDrained(id: string, tx: DbOrTx = this.handle.db): Promise<WorkerRow | undefined> {
    const [row] = await tx
      .update(workers)
      .set({ status: 'drained', state: 'idle', leaseExpiresAt: sql`now()` })
      .where(eq(workers.id, id))
      .returning();
    return row;
  }

  async countByStatus(tx: DbOrTx = this.handle.db): Promise<Record<WorkerStatus, number>> {
    const rows = await tx.select({ status: workers.status, n: sql<number>`count(*)::int` }).from(workers).groupBy(workers.status);
    const out = Object.fromEntries(workerStatus.enumValues.map((s) => [s, 0])) as Record<WorkerStatus, number>;
    for (const r of rows) out[r.status] = r.n;
    return out;
  }
}
