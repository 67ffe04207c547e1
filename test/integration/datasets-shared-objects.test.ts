/**
 * Shard objects shared by datasets (content-addressed, one bucket for all) under concurrency:
 * a dataset delete, or a failed import's cleanup, that runs while another import of the same
 * data has stored (or reused) its objects but not yet inserted its rows must not remove those
 * objects. The interleavings are forced with DatasetService's `afterObjectsStored` seam, on
 * the real coordinator, Postgres and nats-server.
 */
import { startCoordinator, type CoordinatorHandle } from '@gradpool/coordinator';
import { ShardStore } from '@gradpool/datasets';
import { createTestDatabase, TEST_NATS_URL, type TestDatabase } from '@gradpool/testing';
import { connect, type NatsConnection, type ObjectStore } from 'nats';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inProcessConfig, waitFor } from './foundation-helpers.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatasetService } from '../../apps/coordinator/src/services/dataset.service.js';

let handle: CoordinatorHandle;
let database: TestDatabase;
let sql: pg.Pool;
let nc: NatsConnection;
let os: ObjectStore;
let shardStore: ShardStore;
let service: DatasetService;
const adminKey = `test-admin-${randomBytes(12).toString('hex')}`;
const bucket = `gp_shards_it_${randomBytes(4).toString('hex')}`;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${adminKey}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${handle.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A small CSV; each test its own `variant`, so that tests share no objects. */
function csv(variant: number): Uint8Array {
  return new TextEncoder().encode(`x,y,label\n${Array.from({ length: 500 }, (_, i) => `${i + variant * 1000},${(i * 3) % 11},${i % 5}`).join('\n')}\n`);
}

/** Uploads CSV `variant` and imports it as `name`: imports of one variant have the same shard hashes. */
async function importAs(name: string, variant: number): Promise<{ status: number; body: any }> {
  const res = await fetch(`${handle.httpUrl}/v1/datasets/uploads?name=shared.csv`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/octet-stream' },
    body: csv(variant),
  });
  const up = (await res.json()) as { uploadId: string };
  return api('POST', '/v1/datasets', { name, format: 'csv', files: [up.uploadId], seed: 9, shardBytes: 4096 });
}

function hashes(d: any): string[] {
  return [...new Set<string>([...d.splits.train.shards, ...d.splits.validation.shards, ...d.splits.test.shards].map((s: any) => s.sha256))];
}

async function objectCount(): Promise<number> {
  return (await os.list()).filter((o) => !o.deleted).length;
}

/** Hashes of `keys` whose object cannot be read back intact (ShardStore.get verifies the sha256). */
async function unreadable(keys: string[]): Promise<string[]> {
  const bad: string[] = [];
  for (const k of keys) await shardStore.get(k).catch(() => bad.push(k));
  return bad;
}

async function datasetNames(): Promise<string[]> {
  return (await sql.query<{ name: string }>('select name from datasets')).rows.map((r) => r.name);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

beforeAll(async () => {
  database = await createTestDatabase('gp_dsso');
  const config = inProcessConfig(database.url, adminKey);
  handle = await startCoordinator({ ...config, datasets: { shardBucket: bucket, buckets: 'shared' } } as typeof config);
  service = handle.app.get(DatasetService);
  sql = new pg.Pool({ connectionString: database.url, max: 2 });
  sql.on('error', () => undefined);
  sql.on('connect', (client) => client.on('error', () => undefined));
  nc = await connect({ servers: TEST_NATS_URL });
  os = await nc.jetstream().views.os(bucket);
  shardStore = await ShardStore.open(nc, { bucket });
});

afterEach(() => {
  service.hooks.afterObjectsStored = undefined;
});

afterAll(async () => {
  await handle?.close();
  await os?.destroy().catch(() => undefined);
  await nc?.close();
  await sql?.end();
  await database?.drop();
});

describe('datasets sharing shard objects', () => {
  it('a delete of a dataset while an import of the same data is between storing its objects and inserting its rows keeps the objects', async () => {
    const before = await objectCount();
    const a = await importAs('share-a', 1);
    expect(a.status).toBe(201);
    const keys = hashes(a.body);
    expect(keys.length).toBeGreaterThan(2);
    expect(await objectCount()).toBe(before + keys.length);

    // share-b finds every object stored (by share-a) and reuses it; share-a goes meanwhile.
    let deleted = 0;
    service.hooks.afterObjectsStored = async (name) => {
      if (name !== 'share-b') return;
      deleted = (await api('DELETE', `/v1/datasets/${a.body.id}`)).status;
    };
    const b = await importAs('share-b', 1);
    expect(deleted).toBe(204);
    expect(b.status).toBe(201);
    expect(hashes(b.body).sort()).toEqual([...keys].sort());

    expect(await unreadable(keys)).toEqual([]);
    expect(await objectCount()).toBe(before + keys.length);
    expect((await api('DELETE', `/v1/datasets/${b.body.id}`)).status).toBe(204);
    expect(await objectCount()).toBe(before);
  });

  it("a failed import's cleanup keeps the objects another import of the same data is about to reference", async () => {
    const before = await objectCount();
    // fail-a stores the objects; keep-b, started while fail-a waits, reuses them; then fail-a fails.
    const bReached = deferred();
    const bGo = deferred();
    let b: Promise<{ status: number; body: any }> | undefined;
    service.hooks.afterObjectsStored = async (name) => {
      if (name === 'fail-a') {
        b = importAs('keep-b', 2);
        await bReached.promise;
        throw new Error('injected failure after the objects were stored');
      }
      if (name === 'keep-b') {
        bReached.resolve();
        await bGo.promise;
      }
    };
    const a = await importAs('fail-a', 2);
    expect(a.status).toBe(500);
    bGo.resolve();
    const done = await b!;
    expect(done.status).toBe(201);
    const keys = hashes(done.body);
    expect(keys.length).toBeGreaterThan(2);

    expect(await unreadable(keys)).toEqual([]);
    expect(await objectCount()).toBe(before + keys.length);
    expect((await api('DELETE', `/v1/datasets/${done.body.id}`)).status).toBe(204);
    expect(await objectCount()).toBe(before);
    expect(await datasetNames()).not.toContain('fail-a');
  });

  it('a failed import with nothing else sharing its objects leaves no rows and no objects', async () => {
    const before = await objectCount();
    service.hooks.afterObjectsStored = async () => {
      throw new Error('injected failure after the objects were stored');
    };
    expect((await importAs('alone', 3)).status).toBe(500);
    expect(await objectCount()).toBe(before);
    expect(await datasetNames()).not.toContain('alone');
  });

  it('refuses to delete a dataset while its import runs (409)', async () => {
    const reached = deferred();
    const go = deferred();
    service.hooks.afterObjectsStored = async (name) => {
      if (name !== 'slow') return;
      reached.resolve();
      await go.promise;
    };
    const imp = importAs('slow', 4);
    await reached.promise;
    const row = (await api('GET', '/v1/datasets')).body.find((d: any) => d.name === 'slow');
    expect(row.status).toBe('importing');
    const refused = await api('DELETE', `/v1/datasets/${row.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/still importing/);
    go.resolve();
    expect((await imp).status).toBe(201);
    expect((await api('DELETE', `/v1/datasets/${row.id}`)).status).toBe(204);
  });

  it("deleting the row of an import whose coordinator connection died releases its claimed objects, keeping those another dataset uses", async () => {
    const before = await objectCount();
    const other = await importAs('other', 5);
    expect(other.status).toBe(201);
    const otherKeys = hashes(other.body);
    const reached = deferred();
    const go = deferred();
    service.hooks.afterObjectsStored = async (name) => {
      if (name !== 'orphan') return;
      reached.resolve();
      await go.promise;
    };
    // Variant 6 shares no shards with 5; the orphan also claims one of other's objects by hand.
    const imp = importAs('orphan', 6);
    await reached.promise;
    const row = (await api('GET', '/v1/datasets')).body.find((d: any) => d.name === 'orphan');
    await sql.query('insert into shard_claims (dataset_id, sha256) values ($1, $2)', [row.id, otherKeys[0]]);
    const claimed = (await sql.query<{ sha256: string }>('select sha256 from shard_claims where dataset_id = $1', [row.id])).rows.map((r) => r.sha256);
    expect(claimed.length).toBeGreaterThan(2);
    expect(await objectCount()).toBe(before + otherKeys.length + claimed.length - 1);
    // As when the coordinator dies: Postgres ends its session and the import's lease goes with it.
    // (Only this file's database: other test files import in parallel on the same server.)
    const ended = await sql.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'gradpool-import-lease' and datname = $1`, [database.name]);
    expect(ended.rowCount).toBe(1);
    // pg_terminate_backend only signals: the lease (an advisory lock) goes when the backend has exited.
    await waitFor(
      async () => (await sql.query(`select 1 from pg_stat_activity where application_name = 'gradpool-import-lease' and datname = $1`, [database.name])).rowCount === 0,
      'the import lease session to end',
    );
    expect((await api('DELETE', `/v1/datasets/${row.id}`)).status).toBe(204);
    expect(await objectCount()).toBe(before + otherKeys.length);
    expect(await unreadable(otherKeys)).toEqual([]);
    expect(Number((await sql.query('select count(*) from shard_claims')).rows[0].count)).toBe(0);
    // The import itself, still running here, fails (its dataset is gone) and leaves nothing.
    go.resolve();
    expect((await imp).status).toBeGreaterThanOrEqual(400);
    expect(await objectCount()).toBe(before + otherKeys.length);
    expect(await datasetNames()).toEqual(['other']);
    expect((await api('DELETE', `/v1/datasets/${other.body.id}`)).status).toBe(204);
    expect(await objectCount()).toBe(before);
  });
});
