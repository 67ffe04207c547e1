/**
 * The DB-level liveness pass (WorkerLivenessScheduler → SessionService.markSilentOffline): rows a
 * crashed coordinator left 'online' or 'draining', whose worker has no session anywhere, are
 * marked offline once their last heartbeat is older than interval × misses; a worker that keeps
 * heartbeating through a live session is not, nor is a row the pass must not touch (drained).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerLivenessScheduler } from '../../apps/coordinator/src/schedulers/worker-liveness.scheduler.js';
import { groupWithToken, register, startTestCoordinator, TestSession, waitFor, type TestCoordinator } from './foundation-helpers.js';

let tc: TestCoordinator;
let groupId: string;
let token: string;

beforeAll(async () => {
  // Silence limit 200 ms × 3 = 600 ms; the pass runs every 200 ms.
  tc = await startTestCoordinator();
  ({ groupId, token } = await groupWithToken(tc, 'liveness'));
});
afterAll(async () => {
  await tc?.close();
});

/** A worker row as a coordinator that crashed leaves it: written in SQL, no session attached. */
async function crashLeftRow(name: string, status: string, lastSeenAgo: string): Promise<string> {
  const r = await tc.sql.query(
    `insert into workers (group_id, name, secret_hash, status, capabilities, last_seen_at, lease_expires_at)
     values ($1, $2, 'not-a-real-hash', $3, '{"backend":"cpu"}', now() - $4::interval, now() + interval '1 hour')
     returning id`,
    [groupId, name, status, lastSeenAgo],
  );
  return r.rows[0].id as string;
}

async function statusOf(id: string): Promise<string> {
  return (await tc.sql.query('select status from workers where id = $1', [id])).rows[0].status as string;
}

describe('liveness pass', () => {
  it('marks offline the rows left online or draining with a stale last heartbeat, and not a live worker', async () => {
    // A live worker: registered, in session, heartbeating every 100 ms.
    const client = tc.client();
    const reg = await register(client, { joinToken: token, workerName: 'live' });
    const live = new TestSession(client, reg.workerId, reg.sessionSecret);
    await live.next('accepted');
    live.startHeartbeats(100);
    await waitFor(async () => (await statusOf(reg.workerId)) === 'online', 'the live worker online');

    const staleOnline = await crashLeftRow('stale-online', 'online', '10 minutes');
    const staleDraining = await crashLeftRow('stale-draining', 'draining', '10 minutes');
    const staleDrained = await crashLeftRow('stale-drained', 'drained', '10 minutes');

    // The periodic pass (nothing here calls it) marks both offline and records why.
    await waitFor(async () => (await statusOf(staleOnline)) === 'offline' && (await statusOf(staleDraining)) === 'offline', 'stale rows offline');
    const events = await tc.sql.query(`select worker_id, data from events where type = 'worker.offline' order by id`);
    expect(events.rows.map((e) => e.worker_id).sort()).toEqual([staleOnline, staleDraining].sort());
    for (const e of events.rows) expect(e.data).toEqual({ silenceMs: 600 });
    const listed = await tc.api('GET', `/v1/workers?status=offline&group=${groupId}`);
    expect((listed.body as { id: string }[]).map((w) => w.id).sort()).toEqual([staleOnline, staleDraining].sort());

    expect(await statusOf(reg.workerId)).toBe('online');
    // A pass run by hand now changes nothing: offline rows are not reported again.
    expect(await tc.handle.app.get(WorkerLivenessScheduler).tick()).toEqual([]);
    expect((await tc.sql.query(`select count(*)::int as n from events where type = 'worker.offline'`)).rows[0].n).toBe(2);

    // The same row with a recent last heartbeat is left alone until it goes silent too.
    await tc.sql.query(`update workers set status = 'online', last_seen_at = now() where id = $1`, [staleOnline]);
    expect(await tc.handle.app.get(WorkerLivenessScheduler).tick()).toEqual([]);
    expect(await statusOf(staleOnline)).toBe('online');
    await waitFor(async () => (await statusOf(staleOnline)) === 'offline', 'the recently-seen row offline after the silence limit');
    // By then more than a silence limit of passes has run: the live worker is still online and
    // the drained row untouched.
    expect(await statusOf(reg.workerId)).toBe('online');
    expect(await statusOf(staleDrained)).toBe('drained');

    live.end();
  });
});
