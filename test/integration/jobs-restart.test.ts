/**
 * The coordinator stops mid-job and another starts on the same database: the running job resumes
 * from Postgres and the latest checkpoint, the members reconnect (same identity within the lease)
 * and go on; no committed round is lost or committed twice.
 */
import type { CoordinatorMessage__Output } from '@gradpool/protocol';
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, groupWithToken, insertDataset, jobsEnv, mlpSpec, reconnect, runMember, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let nc: NatsConnection;
const started: JobsCoordinator[] = [];

beforeAll(async () => {
  env = await jobsEnv();
  nc = await connect({ servers: TEST_NATS_URL });
});
afterAll(async () => {
  await nc?.close();
  for (const c of started) await c.close();
  await env?.drop();
});

describe('coordinator restart', () => {
  it('resumes a running job from Postgres and the latest checkpoint', async () => {
    const a = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000 } });
    started.push(a);
    const datasetId = await insertDataset(env.sql);
    const { groupId, token } = await groupWithToken(a, 'restart');
    const ws = [await fakeWorker(a, token, 'r1'), await fakeWorker(a, token, 'r2')];
    const sub = await a.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'restart', groupId, minWorkers: 2, maxWorkers: 2, rounds: 8, checkpointEvery: 5 }));
    const jobId = sub.body.id as string;
    const msgs: (readonly [CoordinatorMessage__Output, CoordinatorMessage__Output])[] = [];
    for (const w of ws) msgs.push([await w.session.next('assignment'), await w.session.next('roster')] as const);
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    const gate = (r: number) => (r === 3 ? opened : Promise.resolve());
    const runs = ws.map((w, i) => runMember(nc, w, msgs[i][0], msgs[i][1], 8, gate));
    await waitFor(async () => (await env.sql.query('select round from jobs where id = $1', [jobId])).rows[0].round === '2', 'round 2 committed');

    await a.close();
    const job = (await env.sql.query('select status, round from jobs where id = $1', [jobId])).rows[0];
    expect(job).toEqual({ status: 'running', round: '2' });
    // The stopping keeper wrote the state after round 2.
    const cps = (await env.sql.query('select round::int from checkpoints where job_id = $1 order by round', [jobId])).rows.map((r) => r.round);
    expect(cps).toEqual([0, 3]);

    const b = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000 } });
    started.push(b);
    for (const w of ws) await reconnect(w, b);
    await waitFor(async () => (await b.api('GET', `/v1/jobs/${jobId}`)).body.status === 'running', 'running on the new coordinator');
    const { KeeperService } = await import('../../apps/coordinator/src/services/keeper.service.js');
    await waitFor(() => b.handle.app.get(KeeperService).get(jobId)?.committed === 2, 'keeper restored at round 2');
    open();
    await Promise.all(runs.map((r) => r.done));
    await waitFor(async () => (await b.api('GET', `/v1/jobs/${jobId}`)).body.status === 'completed', 'completed', 30_000);
    const rounds = (await env.sql.query('select round::int, param_hash from rounds where job_id = $1 order by round', [jobId])).rows;
    expect(rounds.map((r) => r.round)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const r of rounds) for (const run of runs) expect(run.hashes.get(r.round)).toBe(r.param_hash);
    for (const w of ws) w.close();
  });
});
