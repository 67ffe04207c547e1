/**
 * Scheduling decisions with fake workers (real grpc-js sessions): minWorkers waits with a
 * reason, group restriction and public jobs, capabilities, fair share, departures and
 * owner-missing faults make new epochs, a runner error keeps a worker out briefly (longer at each
 * repeat). Each test drives a scheduling pass itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulingService } from '../../apps/coordinator/src/services/scheduling.service.js';
import { waitFor } from './foundation-helpers.js';
import { groupWithToken, insertDataset, jobsEnv, mlpSpec, onlineFakeWorker, startJobsCoordinator, type FakeWorker, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let datasetId: string;
let scheduling: SchedulingService;
const workers: FakeWorker[] = [];

beforeAll(async () => {
  env = await jobsEnv();
  // A long period: the tests run passes themselves (events still trigger some). A short first
  // exclusion after a runner error (30 s by default), so that its end can be seen.
  c = await startJobsCoordinator(env, {}, { scheduler: { periodMs: 60_000 }, keeper: { runnerErrorExclusionMs: 1500 } });
  scheduling = c.handle.app.get(SchedulingService);
  datasetId = await insertDataset(env.sql);
});
afterAll(async () => {
  for (const w of workers) w.close();
  await c?.close();
  await env?.drop();
});

async function worker(token: string, name: string, caps = {}): Promise<FakeWorker> {
  const w = await onlineFakeWorker(c, env.sql, token, name, caps);
  workers.push(w);
  return w;
}
async function job(id: string) {
  return (await c.api('GET', `/v1/jobs/${id}`)).body;
}
async function submit(spec: Record<string, unknown>): Promise<string> {
  const r = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, spec));
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}
async function currentJob(workerId: string): Promise<string | null> {
  return (await env.sql.query(`select current_job_id from workers where id = $1`, [workerId])).rows[0].current_job_id;
}

describe('scheduling', () => {
  it('waits below minWorkers with a reason and starts when enough workers are there', async () => {
    const { groupId, token } = await groupWithToken(c, 'min');
    const w1 = await worker(token, 'min-1');
    const id = await submit({ name: 'min', groupId, minWorkers: 2, maxWorkers: 3 });
    await scheduling.tick();
    expect(await job(id)).toMatchObject({ status: 'queued', statusReason: 'waiting for workers: 1 eligible idle of minWorkers 2' });
    expect(await currentJob(w1.id)).toBeNull();
    const w2 = await worker(token, 'min-2');
    await scheduling.tick();
    const j = await job(id);
    expect(j.status).toBe('running');
    expect(j.roster.members.map((m: { workerId: string }) => m.workerId).sort()).toEqual([w1.id, w2.id].sort());
    expect(j.roster.members.map((m: { samplesPerRound: number }) => m.samplesPerRound).reduce((a: number, b: number) => a + b)).toBe(20);
    for (const w of [w1, w2]) {
      const a = await w.session.next('assignment');
      expect(a.assignment?.jobId).toBe(id);
      const r = await w.session.next('roster');
      expect(r.roster).toMatchObject({ jobId: id, epoch: j.epoch, startRound: '0' });
    }
    // A third worker joins a running job a few rounds ahead (no round is interrupted).
    const w3 = await worker(token, 'min-3');
    await scheduling.tick();
    const j3 = await job(id);
    expect(j3.epoch).toBe(j.epoch + 1);
    // Members may be in rounds 0 or 1 already: the new epoch starts at 2.
    expect(j3.roster.startRound).toBe(2);
    expect(j3.roster.members).toHaveLength(3);
    await w3.session.next('assignment');
    await c.api('POST', `/v1/jobs/${id}/cancel`);
    for (const w of [w1, w2, w3]) await w.session.next('unassignment');
  });

  it("serves a group's own jobs, public jobs only where the group allows it, and only capable workers", async () => {
    const closed = await groupWithToken(c, 'closed', false);
    const open = await groupWithToken(c, 'open', true);
    const wc = await worker(closed.token, 'closed-1');
    const wo = await worker(open.token, 'open-1');
    const pub = await submit({ name: 'public', minWorkers: 1, maxWorkers: 4 });
    const gpu = await submit({ name: 'gpu-only', groupId: closed.groupId, requires: { backend: 'gpu' } });
    await scheduling.tick();
    expect(await currentJob(wo.id)).toBe(pub);
    expect(await currentJob(wc.id)).toBeNull();
    expect((await job(gpu)).statusReason).toBe('waiting for workers: 0 eligible idle of minWorkers 1');
    // The closed group's own (capable) job gets its worker.
    const own = await submit({ name: 'own', groupId: closed.groupId });
    await scheduling.tick();
    expect(await currentJob(wc.id)).toBe(own);
    for (const id of [pub, gpu, own]) await c.api('POST', `/v1/jobs/${id}/cancel`);
  });

  it('shares workers fairly between jobs of equal priority, higher priority first', async () => {
    const { groupId, token } = await groupWithToken(c, 'fair');
    // Jobs first (nothing can run them yet), then the workers, one pass each or together alike.
    const low = await submit({ name: 'low', groupId, priority: 0, maxWorkers: 8 });
    const a = await submit({ name: 'a', groupId, priority: 5, maxWorkers: 8 });
    const b = await submit({ name: 'b', groupId, priority: 5, maxWorkers: 8 });
    const ws = [await worker(token, 'fair-1'), await worker(token, 'fair-2'), await worker(token, 'fair-3')];
    await scheduling.tick();
    const got = await Promise.all(ws.map((w) => currentJob(w.id)));
    // Equal priority: one each, then the older job; the lower-priority job gets none.
    expect(got.filter((x) => x === a)).toHaveLength(2);
    expect(got.filter((x) => x === b)).toHaveLength(1);
    expect(got).not.toContain(low);
    for (const id of [low, a, b]) await c.api('POST', `/v1/jobs/${id}/cancel`);
  });

  it('makes a new epoch without a departed worker, and without a missing owner', async () => {
    const { groupId, token } = await groupWithToken(c, 'churn');
    const ws = [await worker(token, 'churn-1'), await worker(token, 'churn-2'), await worker(token, 'churn-3')];
    const id = await submit({ name: 'churn', groupId, minWorkers: 1, maxWorkers: 3 });
    await scheduling.tick();
    const start = await job(id);
    expect(start.roster.members).toHaveLength(3);
    for (const w of ws) await w.session.next('roster');

    // A worker's session ends: removed, new epoch pushed to the others.
    ws[2].close();
    await waitFor(async () => (await job(id)).epoch === start.epoch + 1, 'epoch without the departed worker');
    const after = await job(id);
    expect(after.roster.members.map((m: { workerId: string }) => m.workerId).sort()).toEqual([ws[0].id, ws[1].id].sort());
    expect(await currentJob(ws[2].id)).toBeNull();
    const r0 = await ws[0].session.next('roster');
    expect(r0.roster!.epoch).toBe(after.epoch);

    // A member reports a missing owner in round 0: the owner is removed, the round re-runs in the new epoch.
    ws[0].session.call.write({ fault: { jobId: id, epoch: after.epoch, round: 0, kind: 'owner-missing', message: 'no gather', subjectWorkerId: ws[1].id } });
    ws[0].session.call.write({ fault: { jobId: id, epoch: after.epoch, round: 0, kind: 'owner-missing', message: 'no gather', subjectWorkerId: ws[1].id } });
    await waitFor(async () => (await job(id)).epoch === after.epoch + 1, 'epoch without the missing owner');
    const last = await job(id);
    expect(last.roster).toMatchObject({ startRound: 0, members: [expect.objectContaining({ workerId: ws[0].id, samplesPerRound: 20, share: 1 })] });
    await ws[1].session.next('unassignment');
    const r = await ws[0].session.next('roster');
    expect(r.roster).toMatchObject({ epoch: last.epoch, startRound: '0' });
    // The one member left takes the whole global batch (its lane is all that is left of the data).
    expect(r.roster!.members).toEqual([expect.objectContaining({ workerId: ws[0].id, samplesPerRound: 20 })]);
    const faults = await env.sql.query(`select count(*)::int as n from events where job_id = $1 and type = 'job.fault'`, [id]);
    expect(faults.rows[0].n).toBe(2);
    expect(await env.sql.query(`select count(*)::int as n from rosters where job_id = $1`, [id]).then((x) => x.rows[0].n)).toBe(3);
    await c.api('POST', `/v1/jobs/${id}/cancel`);
  });

  it('keeps a worker whose runner failed out of the job briefly, longer at each repeat, and says so while the job waits', async () => {
    const { groupId, token } = await groupWithToken(c, 'runner-error');
    const ws = [await worker(token, 'rerr-1'), await worker(token, 'rerr-2')];
    const id = await submit({ name: 'runner-error', groupId, minWorkers: 2, maxWorkers: 2 });
    const fail = async () => {
      const j = await job(id);
      expect(j.status).toBe('running');
      ws[0].session.call.write({ fault: { jobId: id, epoch: j.epoch, round: 0, kind: 'runner-error', message: 'TIMEOUT', subjectWorkerId: '' } });
      await waitFor(async () => (await job(id)).status === 'queued', 'queued without the failed worker');
      return performance.now();
    };
    await scheduling.tick();
    let at = await fail();
    await scheduling.tick();
    // Kept out, and named as such: the other worker alone is not enough.
    expect((await job(id)).statusReason).toBe('waiting for workers: 1 eligible idle of minWorkers 2; 1 more kept out after a fault in this job');
    // Offered the job again once its first exclusion (1.5 s here) is over.
    await new Promise((r) => setTimeout(r, Math.max(0, 1600 - (performance.now() - at))));
    await scheduling.tick();
    expect((await job(id)).status).toBe('running');
    // A second runner error: twice as long (3 s), so still kept out after 1.6 s.
    at = await fail();
    await new Promise((r) => setTimeout(r, Math.max(0, 1600 - (performance.now() - at))));
    await scheduling.tick();
    expect((await job(id)).statusReason).toMatch(/; 1 more kept out after a fault in this job$/);
    await waitFor(async () => {
      await scheduling.tick();
      return (await job(id)).status === 'running';
    }, 'offered again after the longer exclusion');
    // The count is read from the fault events (the same on every replica): a third error
    // would keep it out 6 s. After an admin readmits it, the count starts again: 1.5 s.
    await fail();
    const untilOf = async () => Date.parse(((await c.api('GET', `/v1/jobs/${id}/exclusions`)).body as { until: string }[])[0].until) - Date.now();
    expect(await untilOf()).toBeGreaterThan(4000);
    expect((await c.api('DELETE', `/v1/jobs/${id}/exclusions/${ws[0].id}`)).status).toBe(200);
    await waitFor(async () => {
      await scheduling.tick();
      return (await job(id)).status === 'running';
    }, 'running again after the readmit');
    await fail();
    expect(await untilOf()).toBeLessThan(1600);
    await c.api('POST', `/v1/jobs/${id}/cancel`);
  });

  it('lists the workers kept out of a job, and an admin can let one back in at once', async () => {
    const { groupId, token } = await groupWithToken(c, 'readmit');
    const ws = [await worker(token, 'readmit-1'), await worker(token, 'readmit-2')];
    const id = await submit({ name: 'readmit', groupId, minWorkers: 2, maxWorkers: 2 });
    await scheduling.tick();
    const j = await job(id);
    expect(j.status).toBe('running');
    ws[0].session.call.write({ fault: { jobId: id, epoch: j.epoch, round: 0, kind: 'bad-chunk', message: 'a chunk of shard 3 failed its hash', subjectWorkerId: '' } });
    await waitFor(async () => (await job(id)).status === 'queued', 'queued without the faulty worker');
    const listed = await c.api('GET', `/v1/jobs/${id}/exclusions`);
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual([{ workerId: ws[0].id, workerName: 'readmit-1', kind: 'bad-chunk', reason: 'a chunk of shard 3 failed its hash', since: expect.any(String), until: expect.any(String) }]);
    // Five minutes for a fault like this one.
    const until = Date.parse((listed.body as { until: string }[])[0].until);
    expect(until - Date.now()).toBeGreaterThan(4 * 60_000);
    await scheduling.tick();
    expect((await job(id)).status).toBe('queued');
    // Bad requests: someone not kept out, a malformed id, an unknown job.
    for (const [path, status] of [
      [`/v1/jobs/${id}/exclusions/${ws[1].id}`, 404],
      [`/v1/jobs/${id}/exclusions/not-a-worker`, 404],
      [`/v1/jobs/00000000-0000-4000-8000-000000000000/exclusions/${ws[0].id}`, 404],
    ] as const) {
      const r = await c.api('DELETE', path);
      expect(r.status, path).toBe(status);
      expect(JSON.stringify(r.body)).toMatch(/not kept out|no job/);
    }
    const lifted = await c.api('DELETE', `/v1/jobs/${id}/exclusions/${ws[0].id}`);
    expect(lifted.status).toBe(200);
    expect(lifted.body).toMatchObject({ workerId: ws[0].id, kind: 'bad-chunk' });
    expect((await c.api('GET', `/v1/jobs/${id}/exclusions`)).body).toEqual([]);
    await scheduling.tick();
    expect((await job(id)).status).toBe('running');
    await c.api('POST', `/v1/jobs/${id}/cancel`);
  });
});
