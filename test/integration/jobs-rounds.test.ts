/**
 * Rounds end to end on the control plane: fake workers (real grpc-js sessions, real RoundExchange
 * on the real nats-server, the real optimizer) run a job the coordinator scheduled; the keeper
 * commits each round exactly once and in order with the members' parameter hash, writes
 * checkpoints, credit and shard progress, publishes replayable updates, survives a restart of
 * itself (checkpoint + replay), and completes the job.
 */
import { decodeDataState, samplesLeft } from '@gradpool/datasets';
import { readUpdates } from '@gradpool/exchange';
import { parseAssignedJob } from '@gradpool/protocol';
import { createOptimizer, decodeCheckpoint, paramHash } from '@gradpool/training';
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeeperService } from '../../apps/coordinator/src/services/keeper.service.js';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, groupWithToken, insertDataset, jobsEnv, mlpSpec, runMember, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let nc: NatsConnection;
let datasetId: string;
let token: string;

beforeAll(async () => {
  env = await jobsEnv();
  c = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000 } });
  nc = await connect({ servers: TEST_NATS_URL });
  datasetId = await insertDataset(env.sql);
  ({ token } = await groupWithToken(c, 'rounds'));
});
afterAll(async () => {
  await nc?.close();
  await c?.close();
  await env?.drop();
});

const dbg = (m: string) => process.env.DBG && process.stderr.write(`${m}\n`);

describe('a job with two fake members', () => {
  it('commits every round once, in order, with the members hash; checkpoints, credit, progress, replay, keeper restart, completion', async () => {
    const w1 = await fakeWorker(c, token, 'm1');
    const w2 = await fakeWorker(c, token, 'm2');
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'rounds', minWorkers: 2, maxWorkers: 2, rounds: 6, checkpointEvery: 2 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    const [a1, r1, a2, r2] = [await w1.session.next('assignment'), await w1.session.next('roster'), await w2.session.next('assignment'), await w2.session.next('roster')];
    expect(a1.assignment).toMatchObject({ jobId, checkpointKey: 'round-0', checkpointRound: '0' });
    expect(r1.roster!.epoch).toBe(r2.roster!.epoch);
    expect(r1.roster!.members.map((m) => m.samplesPerRound).reduce((a, b) => a + b)).toBe(20);

    // Round 3 waits until the test has checked the replay of rounds 0..2 and restarted the keeper.
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    const gate = (r: number) => (r === 3 ? opened : Promise.resolve());
    const m1 = runMember(nc, w1, a1, r1, 6, gate);
    const m2 = runMember(nc, w2, a2, r2, 6, gate);

    await waitFor(async () => (await env.sql.query('select round from jobs where id = $1', [jobId])).rows[0].round === '2', 'round 2 committed');
    const committed2 = (await env.sql.query('select param_hash from rounds where job_id = $1 and round = 2', [jobId])).rows[0].param_hash;
    // A late joiner's view: checkpoint 2 + nothing, or checkpoint 0 + replay of 0..2.
    dbg('committed 2');
    const os = await nc.jetstream().views.os(a1.assignment!.checkpointBucket);
    const cp0 = decodeCheckpoint((await os.getBlob('round-0'))!);
    const spec = parseAssignedJob(a1.assignment!.specJson).spec;
    const opt = createOptimizer(spec.optimizer as never, cp0.params.length);
    for await (const u of readUpdates(nc, jobId, 0, 3, { idleTimeoutMs: 5000 })) {
      opt.step(cp0.params, u.update, u.round);
      expect(paramHash(cp0.params)).toBe(u.paramHash);
      // The data state travels with each update: 20 samples a round of 200.
      expect(samplesLeft(decodeDataState(u.dataState, 200))).toBe(200 - 20 * (u.round + 1));
    }
    expect(paramHash(cp0.params)).toBe(committed2);
    dbg('replayed');

    // The keeper restarts without a final checkpoint: it restores from checkpoint 2 and goes on.
    const keepers = c.handle.app.get(KeeperService);
    await keepers.stop(jobId, false);
    const row = (await env.sql.query('select * from jobs where id = $1', [jobId])).rows[0];
    expect(row.status).toBe('running');
    await waitFor(() => keepers.get(jobId), 'keeper restarted by the scheduler');
    dbg('keeper restarted');
    // A member whose hash differs is reported and resynced (a fresh Assignment).
    w1.session.call.write({ roundReport: { jobId, epoch: r1.roster!.epoch, round: 2, samples: 10, paramHash: 'f'.repeat(64), exchangeEpoch: r1.roster!.epoch } });
    await waitFor(async () => (await env.sql.query(`select count(*)::int as n from events where job_id = $1 and type = 'job.hash-mismatch' and worker_id = $2`, [jobId, w1.id])).rows[0].n === 1, 'hash mismatch event');
    expect((await w1.session.next('assignment')).assignment?.jobId).toBe(jobId);
    open();
    await Promise.all([m1.done, m2.done]);
    dbg('members done');

    await waitFor(async () => (await env.sql.query('select status from jobs where id = $1', [jobId])).rows[0].status === 'completed', 'job completed');
    const rounds = (await env.sql.query('select round, param_hash, samples, contributors from rounds where job_id = $1 order by round', [jobId])).rows;
    expect(rounds.map((r) => Number(r.round))).toEqual([0, 1, 2, 3, 4, 5]);
    for (const r of rounds) {
      expect(r.param_hash).toBe(m1.hashes.get(Number(r.round)));
      expect(r.param_hash).toBe(m2.hashes.get(Number(r.round)));
      expect(r.samples).toBe(20);
      expect([...r.contributors].sort()).toEqual([w1.id, w2.id].sort());
    }
    const job = (await c.api('GET', `/v1/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ status: 'completed', round: 5, samplesProcessed: 120 });
    expect(job.lastMetrics.loss.round).toBe(5);
    expect(job.credits.map((x: { samples: number }) => x.samples)).toEqual([60, 60]);
    const cps = (await c.api('GET', `/v1/jobs/${jobId}/checkpoints`)).body.map((x: { round: number }) => x.round);
    expect(cps).toEqual(expect.arrayContaining([6, 4, 2, 0]));
    const progress = (await env.sql.query('select sum(processed_samples)::int as n from shard_progress where job_id = $1', [jobId])).rows[0].n;
    expect(progress).toBe(120);
    const metrics = (await c.api('GET', `/v1/jobs/${jobId}/metrics`)).body;
    expect(metrics.map((m: { round: number }) => m.round)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(metrics[0]).toMatchObject({ loss: 1, samples: 20, contributors: 2 });
    // Members are released.
    await w1.session.next('unassignment');
    await w2.session.next('unassignment');
    const assigned = (await env.sql.query('select count(*)::int as n from workers where current_job_id = $1', [jobId])).rows[0].n;
    expect(assigned).toBe(0);
    const model = await c.api('GET', `/v1/jobs/${jobId}/model`);
    expect(model.body.round).toBe(6);
    w1.close();
    w2.close();
  });
});
