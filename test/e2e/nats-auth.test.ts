// Per-worker NATS users end to end (DESIGN rule 1, docs/nats-auth.md): a nats-server in operator
// mode, the real coordinator holding the account seed, and real workers that get, with each
// Assignment, a NATS user limited to that job. Two workers train, a third joins mid-job and
// catches up from the keeper's updates and a checkpoint through its own limited user; the job
// completes with every sample counted once and every member's hash equal to the keeper's, and no
// process hit a permission the design did not give it. The users lapse every 10 s, so the job also
// shows that workers keep training on the refreshed users the coordinator sends. Once the job has
// ended, every worker's users are revoked (NatsRevocationService), not left until they lapse.
import { Cluster, startSecuredNatsServer, type ClusterDataset, type SecuredNats } from '@gradpool/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

let dir: string;
let nats: SecuredNats;
let cluster: Cluster;
let mnist: ClusterDataset;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gp-e2e-nats-auth-'));
  nats = await startSecuredNatsServer(NATS_SERVER, dir);
  cluster = await Cluster.start({
    workers: 2,
    // Users that lapse every 10 s (refreshed every 5 s): the job outlives several, so each worker's
    // connection must sign in again with refreshed credentials mid-job.
    coordinator: { natsUrl: nats.url, env: { ...nats.coordinatorEnv, GRADPOOL_WORKER_NATS_TTL_MS: '10000' }, heartbeatIntervalMs: 2000, heartbeatMisses: 5 },
    worker: { logLevel: 'debug' },
  });
  mnist = await cluster.importMnist();
  await cluster.waitForWorkers(2);
});

afterAll(async () => {
  if (process.env.GP_E2E_DUMP) cluster?.dumpLogs(`${process.env.GP_E2E_DUMP}/nats-auth`);
  await cluster?.[Symbol.asyncDispose]();
  await nats?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('per-worker NATS users', () => {
  it('workers limited to their job train it to the end; a late joiner catches up through its own user', async () => {
    const globalBatch = 1000;
    // Long enough to outlive a user (10 s) even on a quiet machine: the lapse must fall mid-job.
    // (With hidden [64] the rounds got short enough, once checkpoints no longer held the commits,
    // for the job to end before the first user lapsed; 12 epochs of those ran at ~26 rounds/s,
    // more than the keeper commits on a loaded 2-core machine. Bigger rounds instead.)
    const epochs = 6;
    const job = await cluster.submitJob({
      name: 'e2e nats auth',
      datasetId: mnist.id,
      model: { kind: 'mlp', inputShape: [28, 28, 1], hidden: [256, 128], activation: 'relu', numClasses: 10 },
      optimizer: { kind: 'adam', lr: 5e-3 },
      globalBatch,
      epochs,
      minWorkers: 2,
      maxWorkers: 3,
      roundDeadlineMs: 20_000,
      checkpointEvery: 5,
      evalEvery: 0,
      seed: 11,
    });
    await cluster.waitForRound(job.id, 6);
    const late = cluster.startWorker({ name: 'late' });
    const lateId = await cluster.workerId(late);
    const end = await cluster.waitForEnd(job.id, 300_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${cluster.trouble()}`);
    });
    expect(end.status, `${end.statusReason}\n${cluster.trouble()}`).toBe('completed');
    expect(end.samplesProcessed).toBe(epochs * mnist.splits!.train.samples);
    const rounds = await cluster.rounds(job.id);
    expect(rounds.map((r) => r.round)).toEqual(Array.from({ length: end.round + 1 }, (_, i) => i));
    expect(rounds.some((r) => r.contributors.includes(lateId)), 'the late joiner contributed').toBe(true);
    // It started from a checkpoint and the keeper's updates, read with its own limited user.
    expect(late.logs().some((l) => l.msg === 'caught up from the updates stream' || l.msg === 'checkpoint loaded')).toBe(true);
    expect(await cluster.events(job.id, ['job.hash-mismatch'])).toEqual([]);
    // The server closed connections whose user lapsed, and they signed in again mid-job.
    expect(cluster.workers.some((w) => w.logs().some((l) => l.msg === 'reconnected; resending the rounds in flight'))).toBe(true);
    for (const w of cluster.workers) {
      expect(w.output()).not.toMatch(/permissions violation/i);
      expect(w.logs().some((l) => l.msg === 'data-plane credentials refreshed'), `${w.output().slice(-2000)}`).toBe(true);
    }
    // Off the job once it completed, every worker's users are revoked, not left until they lapse.
    const members = [...new Set(rounds.flatMap((r) => r.contributors))];
    const unrevoked = async () => {
      const revoked = new Set((await cluster.events(job.id, ['worker.nats-revoked'])).map((e) => e.workerId));
      return members.filter((m) => !revoked.has(m));
    };
    for (const t = Date.now(); (await unrevoked()).length > 0 && Date.now() - t < 15_000; ) await new Promise((r) => setTimeout(r, 250));
    expect(await unrevoked()).toEqual([]);
  });
});
