/**
 * A keeper asked to stop (the coordinator closing, a pause) while its job is completing: the
 * stop waits for the round loop, and the completing loop stops the keeper itself. Each waited for
 * the other: the job never sent its members away and the coordinator's close hung (CI runs of
 * jobs-restart, jobs-eval and jobs-rounds, 2026-11-30).
 */
import type { CoordinatorMessage__Output } from '@gradpool/protocol';
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeeperService } from '../../apps/coordinator/src/services/keeper.service.js';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, groupWithToken, insertDataset, jobsEnv, mlpSpec, runMember, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let nc: NatsConnection;
let stopping: Promise<void> | undefined;

beforeAll(async () => {
  env = await jobsEnv();
  // The stop comes exactly while the job is completing: after its last round and final
  // checkpoint, before the keeper stops itself.
  c = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000, beforeFinishStop: async (jobId: string) => void (stopping = c.handle.app.get(KeeperService).stop(jobId)) } });
  nc = await connect({ servers: TEST_NATS_URL });
});
afterAll(async () => {
  await nc?.close();
  await c?.close();
  await env?.drop();
});

function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
}

describe('stopping a keeper', () => {
  it('ends when it comes while the job is completing, and the job still sends its members away', async () => {
    const datasetId = await insertDataset(env.sql);
    const { groupId, token } = await groupWithToken(c, 'stop');
    const ws = [await fakeWorker(c, token, 's1'), await fakeWorker(c, token, 's2')];
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'stop', groupId, minWorkers: 2, maxWorkers: 2, rounds: 3 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    const msgs: (readonly [CoordinatorMessage__Output, CoordinatorMessage__Output])[] = [];
    for (const w of ws) msgs.push([await w.session.next('assignment'), await w.session.next('roster')] as const);
    await Promise.all(ws.map((w, i) => runMember(nc, w, msgs[i][0], msgs[i][1], 3).done));
    await waitFor(async () => (await c.api('GET', `/v1/jobs/${jobId}`)).body.status === 'completed', 'completed');
    await waitFor(() => stopping !== undefined, 'the stop asked for');
    expect(await settlesWithin(stopping!, 10_000), 'the stop never ended').toBe(true);
    for (const w of ws) expect((await w.session.next('unassignment', 10_000)).unassignment?.reason).toBe('the job completed');
    expect(c.handle.app.get(KeeperService).get(jobId)).toBeUndefined();
    for (const w of ws) w.close();
  });
});
