// Issue 6, "Faults the job survives … including final accuracy still ≥ 97 %": one MNIST training job
// to the accuracy bar while everything happens to it — a member SIGKILLed mid-round, a new worker
// joining, the coordinator SIGKILLed and restarted — with the real coordinator process, real worker
// processes (wasm), real Postgres and NATS. Each fault alone, with its own assertions, is in
// jobs-faults.test.ts and training-faults.test.ts; this test is about their sum: every sample of every
// pass counted exactly once, every round committed once, every member's last attempt of every round
// equal to the keeper's hash, and the model as good as without churn.
import { Cluster, type ClusterDataset, type WorkerProcess } from '@gradpool/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let cluster: Cluster;
let mnist: ClusterDataset;

beforeAll(async () => {
  // Workers log each round's parameter hash at debug ('round done'): compared with the keeper's below.
  cluster = await Cluster.start({ workers: 3, coordinator: { heartbeatIntervalMs: 2000, heartbeatMisses: 5, leaseMs: 300_000 }, worker: { logLevel: 'debug' } });
  mnist = await cluster.importMnist();
  await cluster.waitForWorkers(3, { idle: true });
});

afterAll(async () => {
  if (process.env.GP_E2E_DUMP) cluster?.dumpLogs(`${process.env.GP_E2E_DUMP}/jobs-churn`);
  await cluster?.[Symbol.asyncDispose]();
});

describe('a training job under churn', () => {
  it('reaches ≥ 97 % test accuracy through a killed member, a joiner and a coordinator restart; every sample once', async () => {
    const epochs = 5;
    const job = await cluster.submitJob({
      name: 'e2e churn to 97 %',
      datasetId: mnist.id,
      model: { kind: 'mlp', inputShape: [28, 28, 1], hidden: [256, 128], activation: 'relu', numClasses: 10 },
      optimizer: { kind: 'adam', lr: 5e-3 },
      globalBatch: 1000,
      epochs,
      minWorkers: 2,
      maxWorkers: 3,
      roundDeadlineMs: 20_000,
      checkpointEvery: 25,
      evalEvery: 0,
      seed: 7,
    });
    const fail = (err: Error) => {
      throw new Error(`${err.message}\n${cluster.trouble()}`);
    };
    const ids = new Map<WorkerProcess, string>();
    for (const w of cluster.workers) ids.set(w, await cluster.workerId(w));

    // A member dies mid-round.
    const at30 = await cluster.waitForRound(job.id, 30).catch(fail);
    const [victim] = [...ids].find(([, id]) => at30.roster?.members.some((m) => m.workerId === id))!;
    await victim.kill();
    // A new worker joins the running job.
    await cluster.waitForRound(job.id, 80).catch(fail);
    const joiner = cluster.startWorker();
    const joinerId = await cluster.workerId(joiner);
    // The coordinator dies and comes back.
    await cluster.waitForRound(job.id, 150).catch(fail);
    await cluster.coordinator.kill('SIGKILL');
    await cluster.coordinator.restart();

    const end = await cluster.waitForEnd(job.id, 540_000).catch(fail);
    expect(end.status, `${end.statusReason}\n${cluster.trouble()}`).toBe('completed');

    const train = mnist.splits!.train.samples;
    const rounds = await cluster.rounds(job.id);
    expect(rounds.map((r) => r.round)).toEqual(Array.from({ length: end.round + 1 }, (_, i) => i));
    // Every sample of every pass exactly once, in the rounds, the job's count and the credit alike.
    expect(end.samplesProcessed).toBe(epochs * train);
    expect(rounds.reduce((s, r) => s + r.samples, 0)).toBe(epochs * train);
    expect(end.credits.reduce((s, c) => s + c.samples, 0)).toBe(epochs * train);
    expect(await cluster.events(job.id, ['job.hash-mismatch'])).toEqual([]);
    // Each member's last attempt of a round (rounds the keeper never committed are re-run) = the committed hash.
    const byRound = new Map(rounds.map((r) => [r.round, r.paramHash]));
    for (const [i, w] of cluster.workers.entries()) {
      const last = new Map<number, unknown>();
      for (const l of w.logs()) if (l.msg === 'round done' && l.jobId === job.id) last.set(Number(l.round), l.paramHash);
      expect([...last].filter(([r, h]) => byRound.has(r) && h !== byRound.get(r)).map(([r]) => r), `worker ${i + 1}`).toEqual([]);
    }
    // The joiner trained; the victim stopped contributing around its death.
    expect(rounds.some((r) => r.contributors.includes(joinerId))).toBe(true);
    const victimId = ids.get(victim)!;
    expect(Math.max(...rounds.filter((r) => r.contributors.includes(victimId)).map((r) => r.round))).toBeLessThan(80);

    const testAcc = (await cluster.metrics(job.id)).find((m) => Number.isFinite(m.test_accuracy))?.test_accuracy;
    expect(testAcc).toBeGreaterThanOrEqual(0.97);
  });
});
