import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  groupWithToken,
  register,
  startTestCoordinator,
  TestSession,
  waitFor,
  type TestCoordinator,
} from './foundation-helpers.js';

let tc: TestCoordinator;
let groupId: string;
let token: string;

beforeAll(async () => {
  tc = await startTestCoordinator();
  ({ groupId, token } = await groupWithToken(tc, 'sessions'));
});
afterAll(async () => {
  await tc?.close();
});

async function workerStatus(id: string): Promise<string | undefined> {
  const r = await tc.api('GET', `/v1/workers?group=${groupId}`);
  return (r.body as { id: string; status: string }[]).find((w) => w.id === id)?.status;
}
async function eventTypes(workerId: string): Promise<string[]> {
  const r = await tc.sql.query('select type from events where worker_id = $1 order by id', [workerId]);
  return r.rows.map((x) => x.type);
}

describe('Session', () => {
  it('refuses a wrong secret, an unknown worker and missing metadata with UNAUTHENTICATED', async () => {
    const reg = await register(tc.client(), { joinToken: token, workerName: 'auth' });
    for (const [id, secret] of [
      [reg.workerId, 'gps_wrong'],
      ['00000000-0000-0000-0000-000000000000', reg.sessionSecret],
      ['', ''],
    ]) {
      const s = new TestSession(tc.client(), id, secret);
      const st = await s.status;
      expect(st.code).toBe(status.UNAUTHENTICATED);
    }
    // An expired lease also ends the identity.
    await tc.sql.query(`update workers set lease_expires_at = now() - interval '1 second' where id = $1`, [reg.workerId]);
    const st = await new TestSession(tc.client(), reg.workerId, reg.sessionSecret).status;
    expect(st.code).toBe(status.UNAUTHENTICATED);
    expect(st.details).toMatch(/lease/);
  });

  it('accepts, goes online with heartbeats, goes offline when they stop (stream ended), and back online on reconnect', async () => {
    const client = tc.client();
    const reg = await register(client, { joinToken: token, workerName: 'beat' });
    const s = new TestSession(client, reg.workerId, reg.sessionSecret);
    const accepted = await s.next('accepted');
    expect(accepted.accepted).toMatchObject({ workerId: reg.workerId, heartbeatIntervalMs: 200, leaseMs: 30_000 });
    s.startHeartbeats(100);
    await waitFor(async () => (await workerStatus(reg.workerId)) === 'online', 'worker online');
    // Online comes with the session; what the worker says of itself comes with its first heartbeat.
    type Row = { id: string; lastSeenAt: string; connected: boolean; state: string; statusText: string };
    let w: Row | undefined;
    await waitFor(async () => {
      const online = await tc.api('GET', `/v1/workers?status=online&group=${groupId}`);
      w = (online.body as Row[]).find((x) => x.id === reg.workerId);
      return w?.statusText === 'testing';
    }, 'the first heartbeat');
    expect(w).toMatchObject({ connected: true, state: 'idle', statusText: 'testing' });
    expect(w?.lastSeenAt).toBeTruthy();

    s.stopHeartbeats();
    const st = await s.status; // the coordinator ends the silent worker's stream
    expect(st.code).toBe(status.DEADLINE_EXCEEDED);
    expect(await workerStatus(reg.workerId)).toBe('offline');
    const offline = await tc.api('GET', `/v1/workers?status=offline&group=${groupId}`);
    expect((offline.body as { id: string }[]).map((x) => x.id)).toContain(reg.workerId);

    // Within the lease the same identity comes back online.
    const again = new TestSession(client, reg.workerId, reg.sessionSecret);
    await again.next('accepted');
    again.startHeartbeats(100);
    await waitFor(async () => (await workerStatus(reg.workerId)) === 'online', 'worker online again');
    again.end();
    await again.status;
    expect(await eventTypes(reg.workerId)).toEqual(['worker.registered', 'worker.online', 'worker.offline', 'worker.online']);
  });

  it('closes the older stream when the same worker opens a new session', async () => {
    const client = tc.client();
    const reg = await register(client, { joinToken: token, workerName: 'twice' });
    const a = new TestSession(client, reg.workerId, reg.sessionSecret);
    await a.next('accepted');
    a.startHeartbeats(100);
    const b = new TestSession(client, reg.workerId, reg.sessionSecret);
    await b.next('accepted');
    b.startHeartbeats(100);
    const st = await a.status;
    expect(st.code).toBe(status.ABORTED);
    expect(st.details).toMatch(/newer session/);
    await waitFor(async () => (await workerStatus(reg.workerId)) === 'online', 'still online');
    b.end();
    await b.status;
  });

  it('drains through the API: DrainRequest on the stream, DrainNotice back, DrainAck, stream ends, status drained', async () => {
    const client = tc.client();
    const reg = await register(client, { joinToken: token, workerName: 'drain-api' });
    const s = new TestSession(client, reg.workerId, reg.sessionSecret);
    await s.next('accepted');
    s.startHeartbeats(100);
    await waitFor(async () => (await workerStatus(reg.workerId)) === 'online', 'online');

    const res = await tc.api('POST', `/v1/workers/${reg.workerId}/drain`);
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('draining');
    const req = await s.next('drain');
    expect(req.drain?.reason).toMatch(/admin/);
    s.drain('asked to');
    await s.next('drainAck');
    const st = await s.status;
    expect(st.code).toBe(status.OK);
    expect(await workerStatus(reg.workerId)).toBe('drained');
    expect(await eventTypes(reg.workerId)).toEqual(['worker.registered', 'worker.online', 'worker.draining', 'worker.drained']);

    // A drained worker's secret no longer opens a session; draining it again is a no-op.
    const after = await new TestSession(client, reg.workerId, reg.sessionSecret).status;
    expect(after.code).toBe(status.UNAUTHENTICATED);
    expect((await tc.api('POST', `/v1/workers/${reg.workerId}/drain`)).body.status).toBe('drained');
  });

  it('drains when the worker asks (Ctrl-C): DrainNotice → DrainAck, status drained', async () => {
    const client = tc.client();
    const reg = await register(client, { joinToken: token, workerName: 'drain-self' });
    const s = new TestSession(client, reg.workerId, reg.sessionSecret);
    await s.next('accepted');
    s.heartbeat();
    s.drain('SIGINT');
    await s.next('drainAck');
    expect((await s.status).code).toBe(status.OK);
    expect(await workerStatus(reg.workerId)).toBe('drained');
  });

  it('refuses to drain an offline worker with 409, and an unknown one with 404', async () => {
    const reg = await register(tc.client(), { joinToken: token, workerName: 'never-online' });
    const r = await tc.api('POST', `/v1/workers/${reg.workerId}/drain`);
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(/offline/);
    const u = await tc.api('POST', `/v1/workers/00000000-0000-0000-0000-000000000000/drain`);
    expect(u.status).toBe(404);
  });

  it('lets later code push messages through the SessionRegistry', async () => {
    const { SessionRegistry } = await import('@gradpool/coordinator');
    const registry = tc.handle.app.get(SessionRegistry);
    const client = tc.client();
    const reg = await register(client, { joinToken: token, workerName: 'pushed' });
    const s = new TestSession(client, reg.workerId, reg.sessionSecret);
    await s.next('accepted');
    expect(registry.send(reg.workerId, { unassignment: { jobId: 'j', reason: 'test' } })).toBe(true);
    expect((await s.next('unassignment')).unassignment?.reason).toBe('test');
    expect(registry.send('00000000-0000-0000-0000-000000000000', { unassignment: {} })).toBe(false);
    s.end();
    await s.status;
  });
});
