/**
 * A bucket per dataset (the default, `GRADPOOL_DATASET_BUCKETS=per-dataset`): an import keeps its
 * train shards in a bucket of its own, and its validation and test shards in another (which the NATS users of its jobs' workers are limited to:
 * apps/worker/src/runner/nats-permissions.test.ts), a delete or a failed import removes that bucket
 * and nothing else, and two imports of the same data share nothing. Real coordinator, Postgres and
 * nats-server.
 */
import { startCoordinator, type CoordinatorHandle } from '@gradpool/coordinator';
import { ShardStore } from '@gradpool/datasets';
import { buckets } from '@gradpool/protocol';
import { createTestDatabase, TEST_NATS_URL, type TestDatabase } from '@gradpool/testing';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatasetService } from '../../apps/coordinator/src/services/dataset.service.js';
import { inProcessConfig } from './foundation-helpers.js';

let handle: CoordinatorHandle;
let database: TestDatabase;
let sql: pg.Pool;
let nc: NatsConnection;
let jsm: JetStreamManager;
let service: DatasetService;
const adminKey = `test-admin-${randomBytes(12).toString('hex')}`;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${adminKey}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${handle.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Uploads a small CSV (the same bytes every time) and imports it as `name`. */
async function importAs(name: string): Promise<{ status: number; body: any }> {
  const csv = `x,y,label\n${Array.from({ length: 400 }, (_, i) => `${i},${(i * 3) % 11},${i % 4}`).join('\n')}\n`;
  const res = await fetch(`${handle.httpUrl}/v1/datasets/uploads?name=b.csv`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/octet-stream' },
    body: new TextEncoder().encode(csv),
  });
  const up = (await res.json()) as { uploadId: string };
  return api('POST', '/v1/datasets', { name, format: 'csv', files: [up.uploadId], seed: 3, shardBytes: 4096, testFraction: 0.2 });
}

const hashes = (d: any): string[] => [...d.splits.train.shards, ...d.splits.validation.shards, ...d.splits.test.shards].map((s: any) => s.sha256);
const streamExists = (bucket: string) =>
  jsm.streams.info(`OBJ_${bucket}`).then(
    () => true,
    (err: Error) => (/stream not found/i.test(err.message) ? false : Promise.reject(err)),
  );

beforeAll(async () => {
  database = await createTestDatabase('gp_dsb');
  const config = inProcessConfig(database.url, adminKey);
  handle = await startCoordinator(config);
  service = handle.app.get(DatasetService);
  sql = new pg.Pool({ connectionString: database.url, max: 2 });
  sql.on('error', () => undefined);
  sql.on('connect', (client) => client.on('error', () => undefined));
  nc = await connect({ servers: TEST_NATS_URL });
  jsm = await nc.jetstreamManager();
});
afterEach(() => {
  service.hooks.afterObjectsStored = undefined;
});
afterAll(async () => {
  await handle?.close();
  await nc?.close();
  await sql?.end();
  await database?.drop();
});

describe('a bucket per dataset', () => {
  it('keeps each import in its own bucket; a delete removes that bucket and leaves the other import of the same data whole', async () => {
    const a = await importAs('own-a');
    const b = await importAs('own-b');
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    expect(a.body.shardBucket).toBe(buckets.datasetShards(a.body.id));
    expect(a.body.evalShardBucket).toBe(buckets.datasetEvalShards(a.body.id));
    expect(b.body.shardBucket).toBe(buckets.datasetShards(b.body.id));
    expect(hashes(a.body)).toEqual(hashes(b.body));
    expect(hashes(a.body).length).toBeGreaterThanOrEqual(3);
    for (const d of [a.body, b.body]) {
      // Train shards in the bucket its jobs' workers read; validation and test shards apart, for the keeper.
      const train = await ShardStore.open(nc, { bucket: d.shardBucket, readOnly: true });
      const evaluation = await ShardStore.open(nc, { bucket: d.evalShardBucket, readOnly: true });
      for (const s of d.splits.train.shards) expect(await train.has(s.sha256)).toBe(true);
      for (const s of [...d.splits.validation.shards, ...d.splits.test.shards]) {
        expect(await evaluation.has(s.sha256)).toBe(true);
        expect(await train.has(s.sha256)).toBe(false);
      }
      expect((await api('GET', `/v1/datasets/${d.id}/objects`)).body).toEqual({ total: hashes(d).length, missing: [] });
    }

    expect((await api('DELETE', `/v1/datasets/${a.body.id}`)).status).toBe(204);
    expect(await streamExists(a.body.shardBucket)).toBe(false);
    expect(await streamExists(a.body.evalShardBucket)).toBe(false);
    expect(await streamExists(b.body.shardBucket)).toBe(true);
    expect((await api('GET', `/v1/datasets/${b.body.id}/objects`)).body.missing).toEqual([]);
    expect((await api('DELETE', `/v1/datasets/${b.body.id}`)).status).toBe(204);
    expect(await streamExists(b.body.shardBucket)).toBe(false);
  });

  it("says every shard is missing when the dataset's buckets are gone (NATS storage lost), without creating them by looking", async () => {
    const d = (await importAs('own-lost')).body;
    await jsm.streams.delete(`OBJ_${d.shardBucket}`);
    await jsm.streams.delete(`OBJ_${d.evalShardBucket}`);
    const objects = await api('GET', `/v1/datasets/${d.id}/objects`);
    expect(objects.body.total).toBe(hashes(d).length);
    expect([...objects.body.missing].sort()).toEqual([...hashes(d)].sort());
    expect(await streamExists(d.shardBucket)).toBe(false);
    expect(await streamExists(d.evalShardBucket)).toBe(false);
    expect((await api('DELETE', `/v1/datasets/${d.id}`)).status).toBe(204);
  });

  it('a failed import removes its bucket with its row', async () => {
    let bucket = '';
    service.hooks.afterObjectsStored = async (name) => {
      bucket = (await sql.query<{ b: string }>('select shard_bucket as b from datasets where name = $1', [name])).rows[0].b;
      expect(await streamExists(bucket)).toBe(true);
      throw new Error('injected failure after the objects were stored');
    };
    expect((await importAs('own-failed')).status).toBe(500);
    expect(bucket).toMatch(/^gp_ds_[0-9a-f-]{36}$/);
    expect(await streamExists(bucket)).toBe(false);
    expect(await streamExists(`${bucket}_eval`)).toBe(false);
    expect((await sql.query('select 1 from datasets where name = $1', ['own-failed'])).rowCount).toBe(0);
  });
});
