import { Inject, Injectable } from '@nestjs/common';
import { metrics, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, asc, eq, gte, inArray, sql } from 'drizzle-orm';
import { DATABASE } from '../tokens.js';

export type MetricRow = typeof metrics.$inferSelect;

/** Per-round named metrics. */
@Injectable()
export class MetricRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async insert(rows: { jobId: string; round: number; name: string; value: number }[], tx: DbOrTx = this.handle.db): Promise<void> {
    const finite = rows.filter((r) => Number.isFinite(r.value));
    if (!finite.length) return;
    await tx
      .insert(metrics)
      .values(finite)
      .onConflictDoUpdate({ target: [metrics.jobId, metrics.name, metrics.round], set: { value: sql`excluded.value` } });
  }

  list(jobId: string, opts: { names?: string[]; from?: number } = {}, tx: DbOrTx = this.handle.db): Promise<MetricRow[]> {
    const conds = [eq(metrics.jobId, jobId), gte(metrics.round, opts.from ?? 0)];
    if (opts.names?.length) conds.push(inArray(metrics.name, opts.names));
    return tx
      .select()
      .from(metrics)
      .where(and(...conds))
      .orderBy(asc(metrics.round), asc(metrics.name));
  }

  /** The newest value of each metric name. */
  async latest(jobId: string, tx: DbOrTx = this.handle.db): Promise<Record<string, { round: number; value: number }>> {
    const rows = await tx
      .selectDistinctOn([metrics.name], { name: metrics.name, round: metrics.round, value: metrics.value })
      .from(metrics)
      .where(eq(metrics.jobId, jobId))
      .orderBy(metrics.name, sql`${metrics.round} desc`);
    return Object.fromEntries(rows.map((r) => [r.name, { round: r.round, value: r.value }]));
  }
}
