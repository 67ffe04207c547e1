/**
 * Robust aggregation seen from the coordinator: with the job default (`aggregation:
 * clipped-mean`), members acting as shard owners scale a huge contribution down and report it;
 * the keeper counts them per round (`scaled_contributions`) and records a `job.scaled` event
 * naming the sender of one far beyond the bound. The keeper also audits owners: one that
 * gathers another mean than the clipped mean of what it was sent is named (`job.fault`,
 * `owner-audit`) and removed. Real coordinator, Postgres, nats-server and exchange; fake compute.
 */
import { KeeperService } from '@gradpool/coordinator';
import { lyingOwner } from '@gradpool/exchange/testing';
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
  // Every shard of every round audited (the default is one at random), so the test is certain.
  c = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000, auditShardsPerRound: 1000, auditCpuShare: 1 } });
  nc = await connect({ servers: TEST_NATS_URL });
});
afterAll(async () => {
  await nc?.close();
  await c?.close();
  await env?.drop();
});

async function faults(jobId: string, kind: string) {
  const r = await env.sql.query<{ worker_id: string; data: { round: number; kind: string; message: string } }>(
    `select worker_id, data from events where job_id = $1 and type = 'job.fault' and data->>'kind' = $2 order by id`,
    [jobId, kind],
  );
  return r.rows;
}

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
    // Fields newer than the first agents travel only when they differ from their defaults (wireSpec).
    expect(Object.keys(JSON.parse(aa.assignment!.specJson).spec)).not.toContain('localSteps');
    expect(Object.keys(JSON.parse(aa.assignment!.specJson).spec)).not.toContain('aggregation');
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
    expect(await faults(jobId, 'owner-audit')).toEqual([]);
    a.close();
    b.close();
  });

  it('an owner that gathers another mean than the clipped mean of what it was sent is named and removed', async () => {
    const datasetId = await insertDataset(env.sql);
    const { groupId, token } = await groupWithToken(c, 'audit', false);
    const a = await fakeWorker(c, token, 'honest');
    const b = await fakeWorker(c, token, 'liar');
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'audit', groupId, rounds: 20, minWorkers: 2, maxWorkers: 2 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    const [aa, ar] = [await a.session.next('assignment'), await a.session.next('roster')];
    const [ba, br] = [await b.session.next('assignment'), await b.session.next('roster')];
    // From round 5 on b publishes its shards' means ×50; a is honest. Round r's gathers make the
    // keeper watch round r + 5, so round 5 is the first audited. Both wait for round 4's commit
    // before round 5, so that what the keeper commits next can only come from the lying rounds.
    const committedRounds = async () => (await env.sql.query<{ round: string }>(`select round from rounds where job_id = $1 order by round`, [jobId])).rows.map((r) => Number(r.round));
    const gate = async (r: number) => {
      if (r === 5) await waitFor(async () => (await committedRounds()).includes(4), 'round 4 committed');
    };
    await Promise.all([
      runMember(nc, a, aa, ar, 7, gate, { clipNormRatio: 3 }).done,
      runMember(
        lyingOwner(nc, 50, (r) => r >= 5),
        b,
        ba,
        br,
        7,
        gate,
        { clipNormRatio: 3 },
      ).done,
    ]);
    await waitFor(async () => (await faults(jobId, 'owner-audit')).length > 0, 'owner-audit fault');
    const [fault] = await faults(jobId, 'owner-audit');
    expect(fault.worker_id).toBe(b.id);
    expect(fault.data.round).toBe(5);
    expect(fault.data.message).toMatch(/not the clipped mean of what it lists: the owner's implied contribution has norm .* over the bound/);
    // One removal, however many of its shards failed, and the honest owner is not named.
    expect((await faults(jobId, 'owner-audit')).map((f) => f.worker_id)).toEqual([b.id]);
    // Removed from the job: with minWorkers 2 that leaves too few, so the job waits for another
    // worker (it is excluded, so it will not be one).
    const un = await b.session.next('unassignment');
    expect(un.unassignment!.jobId).toBe(jobId);
    await waitFor(async () => (await c.api('GET', `/v1/jobs/${jobId}`)).body.status === 'queued', 'the job waiting for workers');
    // The lie was never committed: not round 5, nor 6, run on top of it.
    expect(await committedRounds()).toEqual([0, 1, 2, 3, 4]);
    // It never serves this job again, on this coordinator or on one started after it (the ban is
    // in Postgres), and the API names it; the honest one may.
    const kept = async (cc: typeof c) => (await cc.api('GET', `/v1/jobs/${jobId}/exclusions`)).body as { workerId: string; workerName: string; kind: string; reason: string; until: string | null }[];
    expect(await kept(c)).toEqual([expect.objectContaining({ workerId: b.id, workerName: 'liar', kind: 'owner-audit', until: null, reason: expect.stringMatching(/not the clipped mean/) })]);
    expect(await c.handle.app.get(KeeperService).mayServe(jobId, a.id)).toBe(true);
    // The worker's own page says so too.
    expect((await c.api('GET', `/v1/workers/${b.id}`)).body.keptOutOf).toEqual([expect.objectContaining({ jobId, jobName: 'audit', kind: 'owner-audit', until: null })]);
    const other = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000 } });
    try {
      expect((await kept(other)).map((e) => e.workerId)).toEqual([b.id]);
      expect(await other.handle.app.get(KeeperService).mayServe(jobId, b.id)).toBe(false);
      // An admin who knows better can overrule it, on any replica; that is recorded too.
      const lifted = await other.api('DELETE', `/v1/jobs/${jobId}/exclusions/${b.id}`);
      expect(lifted.status, JSON.stringify(lifted.body)).toBe(200);
      expect(lifted.body).toMatchObject({ workerId: b.id, kind: 'owner-audit', until: null });
      expect(await kept(c)).toEqual([]);
      expect(await c.handle.app.get(KeeperService).mayServe(jobId, b.id)).toBe(true);
      const ev = await env.sql.query(`select worker_id, data from events where job_id = $1 and type = 'job.readmitted'`, [jobId]);
      expect(ev.rows).toEqual([{ worker_id: b.id, data: expect.objectContaining({ kind: 'owner-audit', until: null }) }]);
    } finally {
      await other.close();
    }
    a.close();
    b.close();
  });
});
