/**
 * Leadership: two coordinators on one database; exactly one holds the scheduler lock and
 * schedules; when it stops, the other takes over.
 */
import { startNatsServer } from '@gradpool/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulingService } from '../../apps/coordinator/src/services/scheduling.service.js';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, groupWithToken, insertDataset, jobsEnv, mlpSpec, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let a: JobsCoordinator;
let b: JobsCoordinator;

beforeAll(async () => {
  env = await jobsEnv();
  a = await startJobsCoordinator(env);
  b = await startJobsCoordinator(env);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await env?.drop();
});

describe('scheduler leadership', () => {
  it('lets one coordinator schedule at a time and hands over when it stops', async () => {
    const sa = a.handle.app.get(SchedulingService);
    const sb = b.handle.app.get(SchedulingService);
    await waitFor(() => sa.isLeader || sb.isLeader, 'a leader');
    // Several passes on both: still exactly one leader.
    for (let i = 0; i < 3; i++) await Promise.all([sa.tick(), sb.tick()]);
    expect([sa.isLeader, sb.isLeader].filter(Boolean)).toHaveLength(1);
    const [leader, follower, sFollower] = sa.isLeader ? [a, b, sb] : [b, a, sa];

    // The leader schedules a job for a worker connected to it; the follower runs no keeper.
    const datasetId = await insertDataset(env.sql);
    const { groupId, token } = await groupWithToken(leader, 'lead');
    const w = await fakeWorker(leader, token, 'w');
    const sub = await leader.api('POST', '/v1/jobs', mlpSpec(datasetId, { groupId }));
    await w.session.next('assignment');
    const epochs = await env.sql.query('select count(*)::int as n from rosters where job_id = $1', [sub.body.id]);
    expect(epochs.rows[0].n).toBe(1);
    expect(follower.handle.app.get(SchedulingService).isLeader).toBe(false);
    w.close();

    await leader.close();
    await waitFor(() => sFollower.isLeader, 'the follower takes over', 10_000);
  });

  it('a replica whose NATS is not the leader\'s says that the leader cannot hear its workers', async () => {
    // The first test stopped one replica; the other leads. A third starts on another NATS.
    const lead = [a, b].map((c) => c.handle.app.get(SchedulingService)).find((x) => x.isLeader)!;
    expect(lead).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'gp-leader-nats-'));
    const other = await startNatsServer(process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server', join(dir, 'js'));
    const c = await startJobsCoordinator(env, { NATS_URL: other.url }, { scheduler: { periodMs: 200, leaderSilenceMs: 1000 } });
    try {
      const sc = c.handle.app.get(SchedulingService);
      await waitFor(async () => {
        await sc.tick();
        return sc.leaderUnheard;
      }, 'the replica on another NATS to notice');
      expect(sc.isLeader).toBe(false);
      expect(lead.leaderUnheard).toBe(false);
      // Not ready: a load balancer stops sending it workers.
      const ready = await fetch(`${c.handle.httpUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: { scheduling: string } }).checks.scheduling).toMatch(/none answers on this NATS/);
      const leader = [a, b].find((x) => x.handle.app.get(SchedulingService) === lead)!;
      expect((await fetch(`${leader.handle.httpUrl}/readyz`)).status).toBe(200);
    } finally {
      await c.close();
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
