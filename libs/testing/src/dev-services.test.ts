import { connect, runMigrations, groups } from '@gradpool/db';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './dev-services.js';

// The demo's fallback when no Postgres answers: our migrations and drizzle over PGlite's socket.
describe('embedded Postgres (PGlite)', () => {
  let pg: EmbeddedPostgres | undefined;
  afterAll(async () => pg?.close());

  it('runs the migrations and serves drizzle queries over one connection', async () => {
    pg = await startEmbeddedPostgres();
    await runMigrations(pg.url);
    await runMigrations(pg.url); // idempotent
    const h = connect(pg.url, { max: 1 });
    try {
      await h.db.insert(groups).values({ name: 'embedded' });
      const rows = await h.db.select().from(groups);
      expect(rows.map((r) => r.name)).toEqual(['embedded']);
    } finally {
      await h.close();
    }
  });
});
