import { Inject, Injectable } from '@nestjs/common';
import { groups, type DbHandle, type DbOrTx } from '@gradpool/db';
import { asc, eq, inArray } from 'drizzle-orm';
import { isUuid } from '../secrets.js';
import { DATABASE } from '../tokens.js';

export type GroupRow = typeof groups.$inferSelect;
export type NewGroup = typeof groups.$inferInsert;

@Injectable()
export class GroupRepository {
  constructor(@Inject(DATABASE) private readonly handle: DbHandle) {}

  /** Inserts a group; undefined when the name is taken. */
  async insert(values: NewGroup, tx: DbOrTx = this.handle.db): Promise<GroupRow | undefined> {
    const [row] = await tx.insert(groups).values(values).onConflictDoNothing({ target: groups.name }).returning();
    return row;
  }

  async findById(id: string, tx: DbOrTx = this.handle.db): Promise<GroupRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await tx.select().from(groups).where(eq(groups.id, id)).limit(1);
    return row;
  }

  /** All groups, or those in `ids`. */
  list(ids?: readonly string[], tx: DbOrTx = this.handle.db): Promise<GroupRow[]> {
    const q = tx.select().from(groups);
    return (ids ? q.where(inArray(groups.id, [...ids])) : q).orderBy(asc(groups.name));
  }
}
