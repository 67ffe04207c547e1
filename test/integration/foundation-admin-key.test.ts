/**
 * First start without GRADPOOL_ADMIN_KEY (issue #2): the coordinator process generates an admin
 * key, prints it once as `{"event":"admin-key-generated","key":…}`, the key opens admin routes,
 * and a later start on the same database prints none and the key still works.
 */
import { CoordinatorProcess, createTestDatabase, type TestDatabase } from '@gradpool/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let db: TestDatabase;
let coord: CoordinatorProcess | undefined;

beforeAll(async () => {
  db = await createTestDatabase('gp_found_key');
});
afterAll(async () => {
  await coord?.stop();
  await db?.drop();
});

/** The keys of every `admin-key-generated` line printed so far (all runs). */
function generatedKeys(c: CoordinatorProcess): string[] {
  return c.lines.filter((l) => l.startsWith('{"event":"admin-key-generated"')).map((l) => (JSON.parse(l) as { key: string }).key);
}

async function adminKeyRows(): Promise<{ name: string; role: string; prefix: string; key_hash: string }[]> {
  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  try {
    return (await sql.query('select name, role, prefix, key_hash from api_keys order by created_at')).rows;
  } finally {
    await sql.end();
  }
}

async function createGroup(key: string, name: string): Promise<number> {
  const res = await fetch(`${coord!.httpUrl}/v1/groups`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  await res.text();
  return res.status;
}

describe('admin key bootstrap (coordinator process)', () => {
  it('generates and prints one admin key at first start without GRADPOOL_ADMIN_KEY; a restart prints none and the key still works', async () => {
    expect(await adminKeyRows()).toEqual([]); // a fresh database: no key of any kind

    coord = await CoordinatorProcess.start({ databaseUrl: db.url, adminKey: null });
    const printed = generatedKeys(coord);
    expect(printed, coord.output()).toHaveLength(1);
    const [key] = printed;
    expect(key).toMatch(/^gpk_[\w-]{43}$/);
    // The human-readable note says the same key, and that it is shown only once.
    expect(coord.output()).toContain(`    ${key}`);
    expect(coord.output()).toMatch(/shown only this once/);
    // Stored hashed, under its display prefix only.
    const rows = await adminKeyRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'generated-admin', role: 'admin' });
    expect(key.startsWith(rows[0].prefix)).toBe(true);
    expect(rows[0].prefix.length).toBeLessThan(key.length);
    expect(rows[0].key_hash).not.toContain(key.slice(rows[0].prefix.length));

    // The key opens an admin-only route; a made-up one does not.
    expect(await createGroup(key, 'first-start')).toBe(201);
    expect(await createGroup(`${key}x`, 'forged')).toBe(401);

    // A second start on the same database (still no GRADPOOL_ADMIN_KEY): an admin key exists,
    // so nothing is generated or printed, and the first key keeps working.
    const before = coord.lines.length;
    await coord.restart();
    expect(coord.lines.length).toBeGreaterThan(before); // the second run's ready line was read
    expect(generatedKeys(coord), coord.output()).toEqual([key]);
    expect(coord.lines.slice(before).join('\n')).not.toContain('admin-key-generated');
    expect(await adminKeyRows()).toHaveLength(1);
    expect(await createGroup(key, 'second-start')).toBe(201);
  });
});
