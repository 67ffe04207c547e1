/**
 * Two coordinator replicas on one database and one NATS (docs/known-issues.md, "The session
 * registry is per coordinator process"): a worker connected to the follower gets the leader's
 * assignment and rosters through the session relay, its round reports reach the leader's keeper
 * (the rounds are committed), both replicas' API shows it connected, and when it disconnects the
 * leader sees it detached. Worker events run handlers on the leader only.
 */
import { subjects } from '@gradpool/protocol';
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SchedulingService } from '../../apps/coordinator/src/services/scheduling.service.js';
import { SessionRegistry } from '../../apps/coordinator/src/services/session-registry.js';
import { encodeCoordinatorMessage, PRESENCE_EXPIRY_MS, SessionRelay } from '../../apps/coordinator/src/services/session-relay.js';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, groupWithToken, insertDataset, jobsEnv, mlpSpec, runMember, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let a: JobsCoordinator;
let b: JobsCoordinator;
let nc: NatsConnection;

beforeAll(async () => {
  env = await jobsEnv();
  a = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000 } });
  b = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000 } });
  nc = await connect({ servers: TEST_NATS_URL });
});
afterAll(async () => {
  await nc?.close();
  await a?.close();
  await b?.close();
  await env?.drop();
});

/** `connected` of worker `id` in `GET /v1/workers` of replica `c`. */
const connected = async (c: JobsCoordinator, id: string): Promise<boolean> =>
  ((await c.api('GET', '/v1/workers')).body as { id: string; connected: boolean }[]).find((w) => w.id === id)?.connected === true;

describe('sessions across coordinator replicas', () => {
  it('relays pushes, reports and session changes between the follower and the leader', async () => {
    const sa = a.handle.app.get(SchedulingService);
    const sb = b.handle.app.get(SchedulingService);
    await waitFor(() => sa.isLeader || sb.isLeader, 'a leader');
    const [leader, follower] = sa.isLeader ? [a, b] : [b, a];
    expect(follower.handle.app.get(SchedulingService).isLeader).toBe(false);
    // Each replica knows the other (start-up presence), in this database's cluster.
    const [relayL, relayF] = [leader.handle.app.get(SessionRelay), follower.handle.app.get(SessionRelay)];
    expect(relayL.cluster).toBe(relayF.cluster);
    await waitFor(() => relayL.hasPeers() && relayF.hasPeers(), 'the replicas see each other');

    // Worker events as each replica's handlers see them.
    const seen = { leader: [] as string[], follower: [] as string[] };
    const [regL, regF] = [leader.handle.app.get(SessionRegistry), follower.handle.app.get(SessionRegistry)];
    for (const [reg, log] of [
      [regL, seen.leader],
      [regF, seen.follower],
    ] as const) {
      reg.on('attached', (id) => log.push(`attached ${id}`));
      reg.on('detached', (id, reason) => log.push(`detached ${id} ${reason}`));
      reg.on('roundReport', (id, r) => log.push(`report ${id} ${r.round}`));
    }

    const datasetId = await insertDataset(env.sql);
    const { token } = await groupWithToken(leader, 'cluster');
    const remote = await fakeWorker(follower, token, 'on-follower');
    const local = await fakeWorker(leader, token, 'on-leader');
    expect(regF.hasLocal(remote.id) && !regL.hasLocal(remote.id)).toBe(true);
    // Both replicas' API shows both workers connected.
    for (const c of [leader, follower]) for (const w of [remote, local]) await waitFor(() => connected(c, w.id), `${w.id} connected on ${c.handle.httpUrl}`);
    expect(seen.leader).toContain(`attached ${remote.id}`);

    // A job submitted through the follower's API; the leader schedules it and pushes to both.
    const sub = await follower.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'cluster', minWorkers: 2, maxWorkers: 2, rounds: 4, checkpointEvery: 2 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    const [aR, rR, aL, rL] = [await remote.session.next('assignment'), await remote.session.next('roster'), await local.session.next('assignment'), await local.session.next('roster')];
    // The relayed Assignment is what gRPC would carry (uint64 as decimal strings).
    expect(aR.assignment).toMatchObject({ jobId, checkpointKey: 'round-0', checkpointRound: '0' });
    expect(aR.assignment!.specJson).toBe(aL.assignment!.specJson);
    expect(rR.roster).toEqual(rL.roster);
    expect(rR.roster!.members.map((m) => m.workerId).sort()).toEqual([remote.id, local.id].sort());

    const m1 = runMember(nc, remote, aR, rR, 4);
    const m2 = runMember(nc, local, aL, rL, 4);
    await Promise.all([m1.done, m2.done]);
    await waitFor(async () => (await env.sql.query('select status from jobs where id = $1', [jobId])).rows[0].status === 'completed', 'job completed');
    const rounds = (await env.sql.query('select round, param_hash, contributors from rounds where job_id = $1 order by round', [jobId])).rows;
    expect(rounds.map((r) => Number(r.round))).toEqual([0, 1, 2, 3]);
    for (const r of rounds) {
      expect(r.param_hash).toBe(m1.hashes.get(Number(r.round)));
      expect([...r.contributors].sort()).toEqual([remote.id, local.id].sort());
    }
    // The completion's Unassignment reaches the follower's worker too.
    expect((await remote.session.next('unassignment')).unassignment?.jobId).toBe(jobId);
    // The follower's reports reached the leader's handlers; the follower's handlers saw nothing.
    for (let r = 0; r < 4; r++) expect(seen.leader).toContain(`report ${remote.id} ${r}`);
    expect(seen.follower).toEqual([]);

    // The follower's worker disconnects: the leader sees it detached, no replica shows it connected.
    remote.close();
    await waitFor(() => seen.leader.includes(`detached ${remote.id} closed-by-worker`), 'the leader sees the detach');
    expect(regL.has(remote.id)).toBe(false);
    for (const c of [leader, follower]) expect(await connected(c, remote.id)).toBe(false);
    expect(await connected(follower, local.id)).toBe(true);
    expect(seen.follower).toEqual([]);
    local.close();
  });

  it('drops malformed control messages, and forgets a replica that says goodbye or goes silent', async () => {
    const relay = a.handle.app.get(SessionRelay);
    const reg = a.handle.app.get(SessionRegistry);
    const cluster = relay.cluster;
    const ghost = 'ghost0001';
    const absent = '11111111-2222-4333-8444-555555555555';
    const enc = (x: string) => new TextEncoder().encode(x);
    const from = (replica: string, op?: string) => {
      const h = headers();
      h.set('Gp-Replica', replica);
      if (op) h.set('Gp-Op', op);
      return { headers: h };
    };
    const { token } = await groupWithToken(a, 'relay-garbage');
    const w = await fakeWorker(a, token, 'held-by-a');

    nc.publish(subjects.sessionPush(cluster, w.id), encodeCoordinatorMessage({ unassignment: { jobId: 'x', reason: 'no sender' } }));
    nc.publish(subjects.sessionPush(cluster, w.id), enc('garbage'), from(ghost, 'launch'));
    nc.publish(subjects.sessionPush(cluster, w.id), new Uint8Array([0xff, 0xff, 0xff, 0xff]), from(ghost, 'send'));
    nc.publish(subjects.sessionPush(cluster, w.id), enc('{not json'), from(ghost, 'close'));
    nc.publish(subjects.sessionPush(cluster, w.id), enc('{"reason":"fired","message":"x"}'), from(ghost, 'close'));
    nc.publish(`${subjects.control(cluster)}.nonsense`, enc('x'), from(ghost));
    nc.publish(subjects.sessionEvent(cluster, 'roundReport', absent), new Uint8Array([0xff, 0xff, 0xff]), from(ghost));
    nc.publish(subjects.sessionEvent(cluster, 'detached', absent), enc('because'), from(ghost));
    nc.publish(subjects.sessionEvent(cluster, 'bogus', absent), enc(''), from(ghost));
    nc.publish(subjects.replicaPresence(cluster, ghost), enc('{not json'), from(ghost));
    nc.publish(subjects.replicaPresence(cluster, ghost), enc('{"workers":["x"]}'), from('someone-else'));
    // Still serving: a well-formed push from another replica reaches the worker's stream.
    nc.publish(subjects.sessionPush(cluster, w.id), encodeCoordinatorMessage({ unassignment: { jobId: 'relayed', reason: 'hello' } }), from(ghost, 'send'));
    expect((await w.session.next('unassignment')).unassignment).toMatchObject({ jobId: 'relayed', reason: 'hello' });
    expect(w.session.received.filter((m) => m.body === 'unassignment')).toHaveLength(1);
    expect(reg.hasLocal(w.id)).toBe(true);

    // A replica's presence: its sessions count as connected until it says goodbye…
    nc.publish(subjects.replicaPresence(cluster, ghost), enc(JSON.stringify({ workers: [absent, 'not.a.token'] })), from(ghost));
    await waitFor(() => reg.has(absent), "the ghost replica's worker");
    expect(relay.peerSessions().get(ghost)).toEqual([absent]);
    nc.publish(subjects.replicaPresence(cluster, ghost), enc(JSON.stringify({ workers: [], bye: true })), from(ghost));
    await waitFor(() => !reg.has(absent), 'the ghost forgotten after its goodbye');
    // …or stays silent for PRESENCE_EXPIRY_MS.
    nc.publish(subjects.replicaPresence(cluster, ghost), enc(JSON.stringify({ workers: [absent] })), from(ghost));
    await waitFor(() => reg.has(absent), 'the ghost back');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + PRESENCE_EXPIRY_MS + 1);
      expect(reg.has(absent)).toBe(false);
      expect(relay.peerSessions().has(ghost)).toBe(false);
    } finally {
      vi.useRealTimers();
    }
    w.close();
  });
});
