import { status } from '@grpc/grpc-js';
import type { WorkerServiceClient } from '@gradpool/protocol';
import { CoordinatorProcess, createTestDatabase, type TestDatabase } from '@gradpool/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register, TestSession, waitFor, workerClient } from './foundation-helpers.js';

let db: TestDatabase;
let coord: CoordinatorProcess;
let client: WorkerServiceClient;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read JSON bodies loosely
async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${coord.httpUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${coord.adminKey}`, 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  db = await createTestDatabase('gp_found_proc');
  coord = await CoordinatorProcess.start({ databaseUrl: db.url, heartbeatIntervalMs: 200, heartbeatMisses: 3, leaseMs: 60_000 });
  client = workerClient(coord.grpcAddress);
});
afterAll(async () => {
  client?.close();
  await coord?.stop();
  await db?.drop();
});

/** Opens sessions until one is accepted (the coordinator may be restarting), then heartbeats. */
async function connect(workerId: string, secret: string): Promise<TestSession> {
  return waitFor(async () => {
    const s = new TestSession(client, workerId, secret);
    const first = await Promise.race([s.next('accepted', 5000).then(() => 'accepted' as const), s.status.then((st) => st.code)]);
    if (first !== 'accepted') return undefined;
    s.startHeartbeats(100);
    return s;
  }, 'a session to be accepted', 30_000);
}

describe('coordinator process', () => {
  it('survives kill -9: restarted on the same ports and database, the worker reconnects and is online again', async () => {
    const g = await api('/v1/groups', { method: 'POST', body: JSON.stringify({ name: 'proc' }) });
    expect(g.status).toBe(201);
    const t = await api(`/v1/groups/${g.body.id}/tokens`, { method: 'POST', body: JSON.stringify({}) });
    const reg = await register(client, { joinToken: t.body.token, workerName: 'survivor' });
    const isOnline = async () => (await api(`/v1/workers/${reg.workerId}`)).body.status === 'online';

    const s1 = await connect(reg.workerId, reg.sessionSecret);
    await waitFor(isOnline, 'online before the crash');
    const { httpPort, grpcPort } = coord;
    const firstPid = coord.pid;

    expect((await coord.kill('SIGKILL')).signal).toBe('SIGKILL');
    expect((await s1.status).code).toBe(status.UNAVAILABLE);

    await coord.restart();
    expect(coord.pid).not.toBe(firstPid);
    expect([coord.httpPort, coord.grpcPort]).toEqual([httpPort, grpcPort]);

    const s2 = await connect(reg.workerId, reg.sessionSecret);
    await waitFor(async () => {
      const w = (await api(`/v1/workers/${reg.workerId}`)).body;
      return w.status === 'online' && w.connected;
    }, 'online after the restart');
    const workers = await api('/v1/workers');
    expect(workers.body).toHaveLength(1);
    s2.end();
    await s2.status;
  });

  it('stops cleanly on SIGTERM (exit 0), and migrations are idempotent across restarts', async () => {
    const exit = await coord.kill('SIGTERM');
    expect(exit.code, coord.output()).toBe(0);
    await coord.restart();
    expect((await api('/readyz')).body.status).toBe('ready');
  });
});
