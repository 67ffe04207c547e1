import { Inject, Injectable } from '@nestjs/common';
import { joinTokens, type DbHandle, type DbOrTx } from '@gradpool/db';
import { and, desc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import { isUuid } from '../secrets.js';
import { DATABASE } from '../tokens.js';

export type JoinTokenRow = typeof joinTokens.$inferSelect;
export type NewJoinToken = typeof joinTokens.$inferInsert;

@Injectable()
export class JoinTokenRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  async insert(values: NewJoinToken, tx: DbOrTx = this.handle.db): Promise<JoinTokenRow> {
    const [row] = await tx.insert(joinTokens).values(values).returning();
    return row;
  }

  async findByHash(tokenHash: string, tx: DbOrTx = this.handle.db): Promise<JoinTokenRow | undefined> {
    const [row] = await tx.select().from(joinTokens).where(eq(joinTokens.tokenHash, tokenHash)).limit(1);
    return row;
  }

  async findById(id: string, tx: DbOrTx = this.handle.db): Promise<JoinTokenRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await tx.select().from(joinTokens).where(eq(joinTokens.id, id)).limit(1);
    return row;
  }

  listByGroup(groupId: string, tx: DbOrTx = this.handle.db): Promise<JoinTokenRow[]> {
    return tx.select().from(joinTokens).where(eq(joinTokens.groupId, groupId)).orderBy(desc(joinTokens.createdAt));
  }

  async revoke(groupId: string, id: string, tx: DbOrTx = this.handle.db): Promise<JoinTokenRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await tx
      .update(joinTokens)
      .set({ revokedAt: sql`coalesce(${joinTokens.revokedAt}, now())` })
      .where(and(eq(joinTokens.id, id), eq(joinTokens.groupId, groupId)))
      .returning();
    return row;
  }

  /**
   * Counts one use of a token if it is still usable (not revoked, not expired, not exhausted),
   * atomically: two registrations racing for the last use cannot both get it.
   */
  async consume(id: string, tx: DbOrTx = this.handle.db): Promise<JoinTokenRow | undefined> {
    const [row] = await tx
      .update(joinTokens)
      .set({ uses: sql`${joinTokens.uses} + 1` })
      .where(
        and(
          eq(joinTokens.id, id),
          isNull(joinTokens.revokedAt),
          or(isNull(joinTokens.expiresAt), gt(joinTokens.expiresAt, sql`now()`)),
          or(isNull(joinTokens.maxUses), lt(joinTokens.uses, joinTokens.maxUses)),
        ),
      )
      .returning();
    return row;
  }
}
