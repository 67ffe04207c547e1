import { Inject, Injectable } from '@nestjs/common';
import { apiKeys, type DbOrTx, type DbHandle } from '@gradpool/db';
import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import { isUuid } from '../secrets.js';
import { DATABASE } from '../tokens.js';

export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type NewApiKey = typeof apiKeys.$inferInsert;

@Injectable()
export class ApiKeyRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async findByHash(keyHash: string, tx: DbOrTx = this.handle.db): Promise<ApiKeyRow | undefined> {
    const [row] = await tx.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).limit(1);
    return row;
  }

  async insert(values: NewApiKey, tx: DbOrTx = this.handle.db): Promise<ApiKeyRow> {
    const [row] = await tx.insert(apiKeys).values(values).returning();
    return row;
  }

  list(tx: DbOrTx = this.handle.db): Promise<ApiKeyRow[]> {
    return tx.select().from(apiKeys).orderBy(desc(apiKeys.createdAt));
  }

  async revoke(id: string, tx: DbOrTx = this.handle.db): Promise<ApiKeyRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await tx
      .update(apiKeys)
      .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
      .where(eq(apiKeys.id, id))
      .returning();
    return row;
  }

  /** Records use at most once a minute per key, so that reads do not turn into writes. */
  async touch(id: string, tx: DbOrTx = this.handle.db): Promise<void> {
    await tx
      .update(apiKeys)
      .set({ lastUsedAt: sql`now()` })
      .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, sql`now() - interval '1 minute'`))));
  }

  async countActiveAdmins(tx: DbOrTx = this.handle.db): Promise<number> {
    const [row] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(apiKeys)
      .where(and(eq(apiKeys.role, 'admin'), isNull(apiKeys.revokedAt)));
    return row.n;
  }
}
