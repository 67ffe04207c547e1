/**
 * Data epochs end to end with three fake members that follow rosters as the contract says
 * (docs/jobs-protocol.md, "Data"): each round's samples are planned from the data state by every
 * member and the keeper alike; a data epoch ends with a short round and the next one starts
 * without a roster change; the job completes after its epochs; every sample of each data epoch is
 * processed exactly once, every round committed once.
 */
import { RoundAbortedError, RoundExchange, readUpdates } from '@gradpool/exchange';
import { advanceDataState, decodeDataState, encodeDataState, freshDataState, planRound } from '@gradpool/datasets';
import { parseAssignedJob, type CoordinatorMessage__Output, type RosterUpdate__Output } from '@gradpool/protocol';
import { createOptimizer, decodeCheckpoint, paramHash } from '@gradpool/training';
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, gradient, groupWithToken, insertDataset, jobsEnv, mlpSpec, startJobsCoordinator, type FakeWorker, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

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

/** Messages of one fake worker's session, as queues. */
class Inbox {
  rosters: RosterUpdate__Output[] = [];
  assignment: CoordinatorMessage__Output['assignment'] | null = null;
  unassigned = false;
  private waiters: (() => void)[] = [];
  constructor(w: FakeWorker) {
    w.session.call.on('data', (m: CoordinatorMessage__Output) => {
      if (m.roster) this.rosters.push(m.roster);
      if (m.assignment) this.assignment = m.assignment;
      if (m.unassignment) this.unassigned = true;
      for (const f of this.waiters.splice(0)) f();
    });
  }
  changed(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
  async until<T>(probe: () => T | undefined | null | false): Promise<T> {
    for (;;) {
      const v = probe();
      if (v) return v;
      await this.changed();
    }
  }
}

/**
 * A member that follows rosters as the runner does: a newer roster takes over at its start round
 * (rounds before it finish in the old epoch; the round in flight at it is aborted); a new epoch →
 * replays what it missed; done → waits for the unassignment.
 */
async function member(w: FakeWorker, inbox: Inbox, hashes: Map<number, string>, opts: { inflate?: number } = {}): Promise<void> {
  const a = await inbox.until(() => inbox.assignment);
  const job = parseAssignedJob(a.specJson);
  const os = await nc.jetstream().views.os(a.checkpointBucket);
  const cp = decodeCheckpoint((await os.getBlob(a.checkpointKey))!);
  const params = cp.params;
  const opt = createOptimizer(job.spec.optimizer as never, job.paramCount);
  opt.load(cp.optimizerState);
  let next = cp.round; // the round the state is at
  const total = job.dataset.train.reduce((a, s) => a + s.samples, 0);
  let data = typeof cp.meta.dataState === 'string' ? decodeDataState(cp.meta.dataState, total) : freshDataState(total);
  let seen = 0;
  let ex: RoundExchange | null = null;
  try {
    for (;;) {
      const roster = await inbox.until(() => inbox.unassigned || (inbox.rosters.length > seen && inbox.rosters[inbox.rosters.length - 1]));
      if (roster === true) return;
      seen = inbox.rosters.length;
      const me = roster.members.find((m) => m.workerId === w.id);
      if (!me) continue;
      const start = Number(roster.startRound);
      for await (const u of readUpdates(nc, job.jobId, next, start, { idleTimeoutMs: 5000 })) {
        opt.step(params, u.update, u.round);
        data = decodeDataState(u.dataState, total);
        next = u.round + 1;
      }
      expect(next).toBe(start);
      const rosterObj = { epoch: roster.epoch, members: roster.members.map((m) => m.workerId), selfId: w.id };
      if (!ex) ex = new RoundExchange({ nc, jobId: job.jobId, size: job.paramCount, roster: rosterObj, codec: { name: 'fp32' }, deadlineMs: 10_000 });
      else ex.setRoster(rosterObj);
      const shares = roster.members.map((m) => m.samplesPerRound);
      const takesOver = (r: number) => inbox.rosters.length > seen && Number(inbox.rosters[inbox.rosters.length - 1].startRound) <= r;
      for (let r = start; ; r++) {
        if (data.epoch >= job.spec.epochs! || takesOver(r) || inbox.unassigned) break; // done: wait for the unassignment
        const plan = planRound(data, shares);
        const n = plan.counts[me.index];
        const ac = new AbortController();
        const superseded = inbox.until(() => inbox.unassigned || takesOver(r)).then(() => ac.abort());
        void superseded;
        let res;
        try {
          // `inflate`: a dishonest member claims more samples than its plan gives it (its gradient would weigh more).
          res = await ex.allReduce(r, gradient(job.paramCount, r * 7919 + me.index + 1), n + (opts.inflate ?? 0), { signal: ac.signal });
        } catch (err) {
          if (err instanceof RoundAbortedError || ac.signal.aborted) break;
          throw err;
        } finally {
          ac.abort();
        }
        opt.step(params, res.mean, r);
        next = r + 1;
        data = advanceDataState(data, plan, roster.members.map((m) => res.contributors.includes(m.workerId)), total);
        hashes.set(r, paramHash(params));
        w.session.call.write({
          roundReport: {
            jobId: job.jobId,
            epoch: roster.epoch,
            round: r,
            loss: 1,
            samples: n,
            contributors: res.contributors,
            paramHash: hashes.get(r)!,
            computeMs: 5,
            exchangeEpoch: roster.epoch,
            dataState: encodeDataState(data),
          },
        });
      }
    }
  } finally {
    await ex?.close();
  }
}

describe('data epochs', () => {
  it('plans every round from the data state, ends each pass with a short round, runs two passes, completes', async () => {
    const datasetId = await insertDataset(env.sql);
    const { groupId, token } = await groupWithToken(c, 'epochs');
    const ws = [await fakeWorker(c, token, 'e1'), await fakeWorker(c, token, 'e2'), await fakeWorker(c, token, 'e3')];
    const inboxes = ws.map((w) => new Inbox(w));
    const hashes = ws.map(() => new Map<number, string>());
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'epochs', groupId, minWorkers: 3, maxWorkers: 3, globalBatch: 30, rounds: undefined, epochs: 2, checkpointEvery: 3 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    const runs = ws.map((w, i) => member(w, inboxes[i], hashes[i]));
    await Promise.all(runs);
    await waitFor(async () => (await env.sql.query('select status from jobs where id = $1', [jobId])).rows[0].status === 'completed', 'completed');

    const rounds = (await env.sql.query('select round::int, data_epoch, samples, param_hash from rounds where job_id = $1 order by round', [jobId])).rows;
    expect(rounds.map((r) => r.round)).toEqual(rounds.map((_, i) => i));
    for (const de of [0, 1]) {
      // 200 samples in rounds of 30: six full rounds and a short one of 20, per pass.
      expect(rounds.filter((r) => r.data_epoch === de).map((r) => r.samples)).toEqual([30, 30, 30, 30, 30, 30, 20]);
      const prog = await env.sql.query('select sum(processed_samples)::int as n from shard_progress where job_id = $1 and data_epoch = $2', [jobId, de]);
      expect(prog.rows[0].n).toBe(200);
    }
    for (const r of rounds) {
      const members = hashes.filter((h) => h.has(r.round));
      expect(members.length).toBeGreaterThan(0);
      for (const h of members) expect(h.get(r.round)).toBe(r.param_hash);
    }
    // No roster change was needed for the data: one epoch from start to end.
    const reasons = (await env.sql.query('select reason from rosters where job_id = $1 order by epoch', [jobId])).rows.map((r) => r.reason);
    expect(reasons).toEqual(['start']);
    const job = (await c.api('GET', `/v1/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ status: 'completed', samplesProcessed: 400 });
    for (const w of ws) w.close();
  });

  it('removes a member that claims more samples than its plan; the others finish every pass exactly', async () => {
    const datasetId = await insertDataset(env.sql);
    const { groupId, token } = await groupWithToken(c, 'inflate');
    const ws = [await fakeWorker(c, token, 'i1'), await fakeWorker(c, token, 'i2'), await fakeWorker(c, token, 'i3')];
    const inboxes = ws.map((w) => new Inbox(w));
    const hashes = ws.map(() => new Map<number, string>());
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'inflate', groupId, minWorkers: 2, maxWorkers: 3, globalBatch: 30, rounds: undefined, epochs: 1, checkpointEvery: 3 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    await Promise.all(ws.map((w, i) => member(w, inboxes[i], hashes[i], i === 2 ? { inflate: 5 } : {})));
    await waitFor(async () => (await env.sql.query('select status from jobs where id = $1', [jobId])).rows[0].status === 'completed', 'completed');

    const faults = (await env.sql.query(`select worker_id, data from events where job_id = $1 and type = 'job.fault'`, [jobId])).rows;
    expect(faults.map((f) => [f.worker_id, f.data.kind])).toContainEqual([ws[2].id, 'misreported-samples']);
    // Removed once and kept out (not offered the job again while it runs).
    const reasons = (await env.sql.query('select reason from rosters where job_id = $1 order by epoch', [jobId])).rows.map((r) => r.reason);
    expect(reasons).toEqual(['start', 'misreported-samples']);
    const rounds = (await env.sql.query('select round::int, samples, contributors from rounds where job_id = $1 order by round', [jobId])).rows;
    // It was in the mean of the round it lied in, never after; it was credited its planned samples only.
    const lied = rounds.filter((r) => r.contributors.includes(ws[2].id)).map((r) => r.round);
    expect(lied.length).toBeGreaterThan(0);
    expect(rounds.filter((r) => r.round > Math.max(...lied) + 1).every((r) => !r.contributors.includes(ws[2].id))).toBe(true);
    // Every sample once, whatever was claimed.
    expect(rounds.reduce((a, r) => a + r.samples, 0)).toBe(200);
    const job = (await c.api('GET', `/v1/jobs/${jobId}`)).body;
    expect(job.samplesProcessed).toBe(200);
    expect(job.credits.reduce((a: number, x: { samples: number }) => a + x.samples, 0)).toBe(200);
    for (const w of ws) w.close();
  });
});
