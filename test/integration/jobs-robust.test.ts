/**
 * Robust aggregation seen from the coordinator: with the job default (`aggregation:
 * clipped-mean`), members acting as shard owners scale a huge contribution down and report it;
 * the keeper counts them per round (`scaled_contributions`) and records a `job.scaled` event
 * naming the sender of one far beyond the bound. Real coordinator, Postgres, nats-server and
 * exchange; fake compute.
 */
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, groupWithToken, insertDataset, jobsEnv, mlpSpec, runMember, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let nc: NatsConnection;

beforeAll(async () => {
  env = await jobsEnv();
  c = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000 } });
  nc = await connect({ servers: TEST_NATS_URL });
});
afterAll(async () => {
  await nc?.close();
  await c?.close();
  await env?.drop();
});

describe('robust aggregation in a job', () => {
  it('owners scale a member sending 10 000× its gradient down; the keeper counts it every round and names it', async () => {
    const datasetId = await insertDataset(env.sql);
    const { groupId, token } = await groupWithToken(c, 'robust', false);
    const a = await fakeWorker(c, token, 'honest');
    const b = await fakeWorker(c, token, 'loud');
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'robust', groupId, rounds: 3, minWorkers: 2, maxWorkers: 2 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    expect(sub.body.spec.aggregation).toEqual({ kind: 'clipped-mean', ratio: 3 });
    const jobId = sub.body.id as string;
    const [aa, ar] = [await a.session.next('assignment'), await a.session.next('roster')];
    const [ba, br] = [await b.session.next('assignment'), await b.session.next('roster')];
    const shards = ar.roster!.members.length * 4;
    await Promise.all([runMember(nc, a, aa, ar, 3, undefined, { clipNormRatio: 3 }).done, runMember(nc, b, ba, br, 3, undefined, { clipNormRatio: 3, gradScale: 10_000 }).done]);
    await waitFor(async () => (await c.api('GET', `/v1/jobs/${jobId}`)).body.status === 'completed', 'completed');

    const metrics = (await c.api('GET', `/v1/jobs/${jobId}/metrics`)).body as Record<string, number>[];
    // Every shard of every round scaled the loud member's contribution, and only it.
    expect(metrics.map((m) => m.scaled_contributions)).toEqual([shards, shards, shards]);
    const events = await env.sql.query<{ worker_id: string; data: { round: number; shards: number; worstNormOverBound: number; reportedBy: string[] } }>(
      `select worker_id, data from events where job_id = $1 and type = 'job.scaled' order by (data->>'round')::int`,
      [jobId],
    );
    // One event per round, naming the loud member, in every shard, reported by both owners.
    expect(events.rows.map((e) => e.data.round)).toEqual([0, 1, 2]);
    for (const e of events.rows) {
      expect(e.worker_id).toBe(b.id);
      expect(e.data.shards).toBe(shards);
      expect(e.data.worstNormOverBound).toBeGreaterThan(1000);
      expect(e.data.reportedBy).toEqual([a.id, b.id].sort());
    }
    a.close();
    b.close();
  });
});
