/**
 * Datasets through the real coordinator (in-process, fresh database, its own shard bucket on
 * the real nats-server): built-in MNIST, streamed uploads, the admin CLI, errors as 4xx with
 * nothing left behind, and deletion rules (refused while a live job uses the dataset; ended jobs
 * keep their history with dataset_id null).
 */
import { startCoordinator, type CoordinatorHandle } from '@gradpool/coordinator';
// The CLI is not part of the coordinator's library exports; tests call it in-process.
import { runCli } from '../../apps/coordinator/src/cli/run.js';
import { buckets } from '@gradpool/protocol';
import { createTestDatabase, TEST_NATS_URL, type TestDatabase } from '@gradpool/testing';
import { connect, type NatsConnection, type ObjectStore } from 'nats';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inProcessConfig } from './foundation-helpers.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let handle: CoordinatorHandle;
let database: TestDatabase;
let sql: pg.Pool;
let nc: NatsConnection;
let os: ObjectStore;
let dir: string;
const adminKey = `test-admin-${randomBytes(12).toString('hex')}`;
const bucket = `gp_shards_it_${randomBytes(4).toString('hex')}`;
const MAX_FILE_BYTES = 256 * 1024;
/** Jobs submitted here: their checkpoint buckets are removed at the end. */
const jobIds: string[] = [];

async function api(method: string, path: string, body?: unknown, key: string | null = adminKey): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${handle.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function upload(bytes: Uint8Array, name = 'file'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${handle.httpUrl}/v1/datasets/uploads?name=${name}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  return { status: res.status, body: await res.json() };
}

async function objectCount(): Promise<number> {
  return (await os.list()).filter((o) => !o.deleted).length;
}

async function datasetRows(): Promise<number> {
  return Number((await sql.query('select count(*) from datasets')).rows[0].count);
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['--api', handle.httpUrl, ...argv], { GRADPOOL_ADMIN_KEY: adminKey }, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  database = await createTestDatabase('gp_ds');
  const config = inProcessConfig(database.url, adminKey);
  handle = await startCoordinator({ ...config, datasets: { shardBucket: bucket, maxFileBytes: MAX_FILE_BYTES, buckets: 'shared' } } as typeof config);
  sql = new pg.Pool({ connectionString: database.url, max: 2 });
  // Dropping the database ends its sessions: that must not crash the test process.
  sql.on('error', () => undefined);
  sql.on('connect', (client) => client.on('error', () => undefined));
  nc = await connect({ servers: TEST_NATS_URL });
  os = await nc.jetstream().views.os(bucket);
  dir = await mkdtemp(join(tmpdir(), 'gp-ds-it-'));
});

afterAll(async () => {
  await handle?.close();
  for (const id of jobIds) await nc?.jetstream().views.os(buckets.checkpoints(id)).then((o) => o.destroy()).catch(() => undefined);
  await os?.destroy().catch(() => undefined);
  await nc?.close();
  await sql?.end();
  await database?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('datasets API', () => {
  let mnistId: string;

  it('imports the built-in MNIST into shards in the object store', async () => {
    const r = await api('POST', '/v1/datasets', { builtin: 'mnist', seed: 1 });
    expect(r.status).toBe(201);
    const d = r.body;
    mnistId = d.id;
    expect(d).toMatchObject({
      name: 'mnist',
      status: 'ready',
      featureShape: [28, 28, 1],
      featureDtype: 'float32',
      numClasses: 10,
      counts: { train: 54_000, validation: 6000, test: 10_000 },
      normalisation: { kind: 'scale', min: 0, max: 255 },
      shardBucket: bucket,
    });
    const all = [...d.splits.train.shards, ...d.splits.validation.shards, ...d.splits.test.shards];
    expect(d.splits.train.shards.reduce((a: number, s: any) => a + s.sampleCount, 0)).toBe(54_000);
    expect(await objectCount()).toBe(new Set(all.map((s: any) => s.sha256)).size);
    const info = await os.info(all[0].sha256);
    expect(info?.size).toBe(all[0].bytes);
  });

  it('lists and shows datasets; viewers read, only admins import', async () => {
    const list = await api('GET', '/v1/datasets');
    expect(list.status).toBe(200);
    expect(list.body.map((d: any) => d.name)).toEqual(['mnist']);
    expect(list.body[0].splits).toBeUndefined();
    const show = await api('GET', `/v1/datasets/${mnistId}`);
    expect(show.body.splits.test.samples).toBe(10_000);
    expect((await api('GET', '/v1/datasets/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const viewer = (await api('POST', '/v1/api-keys', { name: 'v', role: 'viewer' })).body.key;
    expect((await api('GET', '/v1/datasets', undefined, viewer)).status).toBe(200);
    expect((await api('POST', '/v1/datasets', { builtin: 'mnist', name: 'm2' }, viewer)).status).toBe(403);
    expect((await api('GET', '/v1/datasets', undefined, null)).status).toBe(401);
  });

  it('stores shared shards once, and deletes objects only when no dataset uses them', async () => {
    const before = await objectCount();
    const csv = new TextEncoder().encode(`x,y,label\n${Array.from({ length: 500 }, (_, i) => `${i},${i % 7},${i % 4}`).join('\n')}\n`);
    const importAs = async (name: string) => {
      const up = await upload(csv, 'twin.csv');
      return api('POST', '/v1/datasets', { name, format: 'csv', files: [up.body.uploadId], seed: 4, shardBytes: 4096 });
    };
    const a = await importAs('twin-a');
    expect(a.status).toBe(201);
    const shards = a.body.splits.train.shards.length + a.body.splits.validation.shards.length;
    expect(shards).toBeGreaterThan(2);
    expect(await objectCount()).toBe(before + shards);
    const b = await importAs('twin-b');
    expect(b.status).toBe(201);
    expect(b.body.contentHash).toBe(a.body.contentHash);
    expect(await objectCount()).toBe(before + shards);
    expect((await api('DELETE', `/v1/datasets/${b.body.id}`)).status).toBe(204);
    expect(await objectCount()).toBe(before + shards);
    expect((await api('DELETE', `/v1/datasets/${a.body.id}`)).status).toBe(204);
    expect(await objectCount()).toBe(before);
    expect((await api('POST', '/v1/datasets', { builtin: 'mnist', seed: 1 })).status).toBe(409);
  });

  it('says which of a dataset\'s shards the object store lacks (Postgres and NATS parted ways)', async () => {
    const csv = new TextEncoder().encode(`x,y,label\n${Array.from({ length: 300 }, (_, i) => `${i},${i % 5},${i % 3}`).join('\n')}\n`);
    const up = await upload(csv, 'parted.csv');
    const ds = await api('POST', '/v1/datasets', { name: 'parted', format: 'csv', files: [up.body.uploadId], seed: 9, shardBytes: 4096 });
    expect(ds.status).toBe(201);
    const detail = (await api('GET', `/v1/datasets/${ds.body.id}`)).body;
    const hashes = [...new Set([...detail.splits.train.shards, ...detail.splits.validation.shards, ...detail.splits.test.shards].map((s: any) => s.sha256))];
    expect((await api('GET', `/v1/datasets/${ds.body.id}/objects`)).body).toEqual({ total: hashes.length, missing: [] });
    await os.delete(hashes[0] as string);
    expect((await api('GET', `/v1/datasets/${ds.body.id}/objects`)).body).toEqual({ total: hashes.length, missing: [hashes[0]] });
    expect((await api('GET', '/v1/datasets/00000000-0000-4000-8000-000000000000/objects')).status).toBe(404);
    expect((await api('DELETE', `/v1/datasets/${ds.body.id}`)).status).toBe(204);
  });

  it('refuses to delete a dataset a live job uses (409 naming it); ended jobs keep their history', async () => {
    const before = await objectCount();
    const csv = new TextEncoder().encode(`f1,f2,label\n${Array.from({ length: 1200 }, (_, i) => `${i % 11},${(i * 3) % 5},${i % 3}`).join('\n')}\n`);
    const importAs = async (name: string) => {
      const up = await upload(csv, 'held.csv');
      const r = await api('POST', '/v1/datasets', { name, format: 'csv', files: [up.body.uploadId], seed: 9, shardBytes: 4096 });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body;
    };
    const held = await importAs('held');
    const twin = await importAs('held-twin'); // same samples: shares every object with `held`
    const objects = new Set([...held.splits.train.shards, ...held.splits.validation.shards].map((s: any) => s.sha256)).size;
    expect(await objectCount()).toBe(before + objects);

    const spec = {
      name: 'holds-data',
      datasetId: held.id,
      model: { kind: 'mlp', inputShape: [2], hidden: [4], numClasses: 3 },
      optimizer: { kind: 'sgd', lr: 0.1 },
      globalBatch: 20,
      rounds: 4,
      evalEvery: 0,
    };
    const submitted = await api('POST', '/v1/jobs', spec);
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
    const live = submitted.body.id as string;
    jobIds.push(live);
    expect(submitted.body.status).toBe('queued'); // no workers: it waits, as a live job

    const queued = await api('DELETE', `/v1/datasets/${held.id}`);
    expect(queued.status).toBe(409);
    expect(queued.body.message).toContain(`holds-data (${live}, queued)`);
    expect((await api('POST', `/v1/jobs/${live}/pause`)).body.status).toBe('paused');
    const paused = await api('DELETE', `/v1/datasets/${held.id}`);
    expect(paused.status).toBe(409);
    expect(paused.body.message).toContain(`holds-data (${live}, paused)`);

    // A job that completed earlier on the same dataset, with a metric: an ended job does not block.
    const done = (
      await sql.query(
        `insert into jobs (name, dataset_id, spec, status, round, samples_processed, finished_at)
         select 'finished-earlier', dataset_id, spec, 'completed', 3, 80, now() from jobs where id = $1 returning id`,
        [live],
      )
    ).rows[0].id as string;
    await sql.query(`insert into metrics (job_id, round, name, value) values ($1, 3, 'loss', 0.5)`, [done]);
    expect((await api('DELETE', `/v1/datasets/${held.id}`)).status).toBe(409);

    expect((await api('POST', `/v1/jobs/${live}/cancel`)).body.status).toBe('cancelled');
    expect((await api('DELETE', `/v1/datasets/${held.id}`)).status).toBe(204);
    expect((await api('GET', `/v1/datasets/${held.id}`)).status).toBe(404);
    // Every object is still named by the twin's shard rows, so none went.
    expect(await objectCount()).toBe(before + objects);

    const cancelled = await api('GET', `/v1/jobs/${live}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', datasetId: null, totalRounds: null, etaSeconds: null });
    expect(cancelled.body.spec.datasetId).toBe(held.id);
    expect((await api('GET', `/v1/jobs/${live}/checkpoints`)).body).toEqual([expect.objectContaining({ round: 0 })]);
    const completed = await api('GET', `/v1/jobs/${done}`);
    expect(completed.status).toBe(200);
    expect(completed.body).toMatchObject({ status: 'completed', datasetId: null, round: 3, samplesProcessed: 80 });
    expect((await api('GET', `/v1/jobs/${done}/metrics`)).body).toEqual([{ round: 3, loss: 0.5 }]);
    const listed = (await api('GET', '/v1/jobs')).body.filter((j: any) => j.id === live || j.id === done);
    expect(listed.map((j: any) => j.datasetId)).toEqual([null, null]);

    // A paused job without its dataset cannot arise through the API; if one did, resuming says why.
    await sql.query(`update jobs set status = 'paused' where id = $1`, [live]);
    const resumed = await api('POST', `/v1/jobs/${live}/resume`);
    expect(resumed.status).toBe(409);
    expect(resumed.body.message).toMatch(/cannot resume: its dataset .* was deleted/);
    await sql.query(`update jobs set status = 'cancelled' where id = $1`, [live]);

    expect((await api('DELETE', `/v1/datasets/${twin.id}`)).status).toBe(204);
    expect(await objectCount()).toBe(before);
  });

  it('refuses to delete a dataset a job uses (409), then deletes it and its objects once the job ended', async () => {
    const job = await sql.query(`insert into jobs (name, dataset_id, spec) values ('j', $1, '{}') returning id`, [mnistId]);
    const refused = await api('DELETE', `/v1/datasets/${mnistId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/used by a live job: j \(.*, queued\)/);
    await sql.query(`update jobs set status = 'failed' where id = $1`, [job.rows[0].id]);
    expect((await api('DELETE', `/v1/datasets/${mnistId}`)).status).toBe(204);
    expect(await objectCount()).toBe(0);
    expect(await datasetRows()).toBe(0);
    const kept = await sql.query('select dataset_id from jobs where id = $1', [job.rows[0].id]);
    expect(kept.rows).toEqual([{ dataset_id: null }]);
  });

  it('imports a CSV through the CLI (streamed upload), lists, shows and deletes it', async () => {
    const rows = ['sepal,petal,species'];
    for (let i = 0; i < 300; i++) rows.push(`${(i % 17) / 3},${(i * 7) % 13},${['setosa', 'versicolor', 'virginica'][i % 3]}`);
    const file = join(dir, 'iris.csv');
    await writeFile(file, rows.join('\n'));
    const imp = await cli('datasets', 'import', file, '--format', 'csv', '--name', 'iris', '--label-column', 'species', '--normalise', 'standardise', '--test-fraction', '0.2', '--seed', '3');
    expect(imp.err).toMatch(/uploaded/);
    expect(imp.code).toBe(0);
    expect(imp.out).toMatch(/samples {8}train 210, validation 30, test 60/);
    expect(imp.out).toMatch(/classes {8}3: setosa, versicolor, virginica/);
    const list = await cli('datasets', 'list');
    expect(list.out).toMatch(/iris/);
    const show = await cli('datasets', 'show', 'iris', '--json');
    expect(JSON.parse(show.out).normalisation.kind).toBe('standardise');
    expect((await cli('datasets', 'delete', 'iris')).code).toBe(0);
    expect(await objectCount()).toBe(0);
    const missing = await cli('datasets', 'show', 'iris');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no dataset named "iris"/);
  });

  it('answers bad uploads with 4xx naming problem and position, leaving nothing behind', async () => {
    const ragged = await upload(new TextEncoder().encode('a,b,label\n1,2,x\n3,y\n'), 'bad.csv');
    expect(ragged.status).toBe(201);
    const r1 = await api('POST', '/v1/datasets', { name: 'ragged', format: 'csv', files: [ragged.body.uploadId] });
    expect(r1.status).toBe(422);
    expect(r1.body.message).toMatch(/ragged row.*bad\.csv, line 3/);

    const img = await upload(Uint8Array.from([0x12, 0, 8, 3, 0, 0, 0, 1]), 'img.idx');
    const lab = await upload(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 1, 5]), 'lab.idx');
    const r2 = await api('POST', '/v1/datasets', { name: 'badidx', format: 'idx', files: [img.body.uploadId, lab.body.uploadId] });
    expect(r2.status).toBe(422);
    expect(r2.body.message).toMatch(/wrong magic number.*img\.idx, byte 0/);

    // A valid first pass stores shards; a failure after it (label outside declared classes in the test file) removes them.
    const good = await upload(new TextEncoder().encode('x,label\n1,a\n2,b\n3,a\n'), 'train.csv');
    const badTest = await upload(new TextEncoder().encode('x,label\n1,a\n2,c\n'), 'test.csv');
    const r3 = await api('POST', '/v1/datasets', { name: 'partial', format: 'csv', files: [good.body.uploadId], testFiles: [badTest.body.uploadId], classes: ['a', 'b'] });
    expect(r3.status).toBe(422);
    expect(r3.body.message).toMatch(/label "c" is not one of the declared classes/);

    const big = await upload(new Uint8Array(MAX_FILE_BYTES + 1), 'big.bin');
    expect(big.status).toBe(422);
    expect(big.body.message).toMatch(/big\.bin is larger than the limit of 262144 bytes/);

    expect((await upload(new Uint8Array(0), 'empty.csv')).status).toBe(422);
    expect((await api('POST', '/v1/datasets', { name: 'x', format: 'csv', files: [ragged.body.uploadId] })).status).toBe(404); // claimed already
    expect((await api('POST', '/v1/datasets', { name: 'x', format: 'tsv', files: [] })).status).toBe(422);
    expect((await api('POST', '/v1/datasets', { builtin: 'cifar' })).status).toBe(422);
    expect(await datasetRows()).toBe(0);
    expect(await objectCount()).toBe(0);
  });

  it('the CLI exits non-zero with the server message on errors', async () => {
    const file = join(dir, 'nan.csv');
    await writeFile(file, 'a,label\nNaN,x\n');
    const r = await cli('datasets', 'import', file, '--format', 'csv', '--name', 'nan');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/gradpool: .*"NaN" is not finite.*line 2, column 1.*\(HTTP 422\)/);
    expect((await cli('datasets', 'import', file, '--name', 'nan')).code).toBe(2);
  });
});
