/**
 * A dataset whose shards are gone from the object store (NATS storage lost, or a coordinator
 * pointed at another NATS while Postgres still says "ready"): a job on it is refused at
 * submission and at resume, and a running job whose members cannot fetch a shard is paused
 * with a reason that says what to do, instead of losing its members one by one for ever.
 */
import { ShardStore } from '@gradpool/datasets';
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulingService } from '../../apps/coordinator/src/services/scheduling.service.js';
import { waitFor } from './foundation-helpers.js';
import { groupWithToken, insertDataset, jobsEnv, mlpSpec, onlineFakeWorker, startJobsCoordinator, type FakeWorker, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let nc: NatsConnection;
let scheduling: SchedulingService;
const workers: FakeWorker[] = [];

beforeAll(async () => {
  env = await jobsEnv();
  c = await startJobsCoordinator(env, {}, { scheduler: { periodMs: 60_000 } });
  scheduling = c.handle.app.get(SchedulingService);
  nc = await connect({ servers: TEST_NATS_URL });
});
afterAll(async () => {
  for (const w of workers) w.close();
  await nc?.close();
  await c?.close();
  await env?.drop();
});

async function worker(token: string, name: string): Promise<FakeWorker> {
  const w = await onlineFakeWorker(c, env.sql, token, name);
  workers.push(w);
  return w;
}
async function job(id: string) {
  return (await c.api('GET', `/v1/jobs/${id}`)).body;
}
async function shardHashes(datasetId: string): Promise<string[]> {
  return (await env.sql.query(`select sha256 from shards where dataset_id = $1 order by index`, [datasetId])).rows.map((r) => r.sha256 as string);
}

describe('a dataset whose shards are missing from the object store', () => {
  it('is refused at submission, naming the dataset, how many shards are missing and what to do', async () => {
    const datasetId = await insertDataset(env.sql, { name: 'lost-store', objects: false });
    const r = await c.api('POST', '/v1/jobs', mlpSpec(datasetId));
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(/dataset lost-store: the object store lacks 4 of its 4 shard objects .*Import the same data again/);
    expect((await env.sql.query(`select count(*)::int as n from jobs where dataset_id = $1`, [datasetId])).rows[0].n).toBe(0);
    const objects = await c.api('GET', `/v1/datasets/${datasetId}/objects`);
    expect(objects.body).toMatchObject({ total: 4 });
    expect(objects.body.missing).toHaveLength(4);
  });

  it("pauses a running job when a member cannot fetch a shard the store lost; resumes once it is back", async () => {
    const datasetId = await insertDataset(env.sql, { name: 'loses-one' });
    const { groupId, token } = await groupWithToken(c, 'lost');
    const ws = [await worker(token, 'lost-1'), await worker(token, 'lost-2')];
    const created = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'lost', groupId, minWorkers: 2 }));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    await scheduling.tick();
    expect((await job(id)).status).toBe('running');
    for (const w of ws) await w.session.next('roster');

    // The store loses one shard; a member reports it.
    const store = await ShardStore.open(nc);
    const lost = (await shardHashes(datasetId))[2];
    const bytes = await store.get(lost);
    await store.delete(lost);
    const epoch = (await job(id)).epoch;
    ws[0].session.call.write({ fault: { jobId: id, epoch, round: 0, kind: 'bad-shard', message: `shard 2: shard ${lost} not found`, subjectWorkerId: '' } });

    await waitFor(async () => (await job(id)).status === 'paused', 'paused');
    const paused = await job(id);
    expect(paused.statusReason).toMatch(/^paused: dataset loses-one: the object store lacks 1 of its 4 shard objects \(/);
    expect(paused.statusReason).toContain(lost.slice(0, 12));
    for (const w of ws) expect((await w.session.next('unassignment')).unassignment?.reason).toMatch(/shards missing from the object store/);
    // Neither member is blamed: both may take the job again.
    expect((await env.sql.query(`select count(*)::int as n from workers where current_job_id = $1`, [id])).rows[0].n).toBe(0);
    const state = await env.sql.query(`select data from events where job_id = $1 and type = 'job.state' order by id desc limit 1`, [id]);
    expect(state.rows[0].data).toMatchObject({ status: 'paused', missingShards: [lost] });

    // Resume is refused while the shard is missing, and works once the same bytes are back.
    const refused = await c.api('POST', `/v1/jobs/${id}/resume`);
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/lacks 1 of its 4 shard objects/);
    expect((await store.put(bytes)).sha256).toBe(lost);
    const resumed = await c.api('POST', `/v1/jobs/${id}/resume`);
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    await scheduling.tick();
    await waitFor(async () => (await job(id)).status === 'running', 'running again');
    expect((await job(id)).roster.members).toHaveLength(2);
    await c.api('POST', `/v1/jobs/${id}/cancel`);
  });

  it('removes only the member when the store has every shard (its own copy or disk was bad)', async () => {
    const datasetId = await insertDataset(env.sql, { name: 'all-there' });
    const { groupId, token } = await groupWithToken(c, 'bad-copy');
    const ws = [await worker(token, 'copy-1'), await worker(token, 'copy-2')];
    const id = (await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'bad-copy', groupId, minWorkers: 1 }))).body.id as string;
    await scheduling.tick();
    const start = await job(id);
    expect(start.roster.members).toHaveLength(2);
    ws[0].session.call.write({ fault: { jobId: id, epoch: start.epoch, round: 0, kind: 'bad-shard', message: 'shard 1: hash mismatch twice', subjectWorkerId: '' } });
    await waitFor(async () => (await job(id)).epoch === start.epoch + 1, 'epoch without the faulty member');
    const after = await job(id);
    expect(after.status).toBe('running');
    expect(after.roster.members.map((m: { workerId: string }) => m.workerId)).toEqual([ws[1].id]);
    await c.api('POST', `/v1/jobs/${id}/cancel`);
  });
});
