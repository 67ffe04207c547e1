// Training end to end: the real coordinator process (scheduler, keeper) and real worker
// processes (gradpool-worker join with the TrainingRunner) train the MNIST MLP through NATS.
// By default one data epoch with a global batch of 1024 (53 rounds, the end of the epoch dealt
// out to the last sample; ~91 % test accuracy). Options (env): GP_E2E_ROUNDS (a round count
// instead of the epoch), GP_E2E_BATCH, GP_E2E_DUMP=/tmp/x (every process's output to /tmp/x-*.log).
// Asserts what the issue promises of a healthy run: every round committed once and in order,
// every member's parameter hash equal to the keeper's, the loss going down.
import { AdminApi, CoordinatorProcess, createTestDatabase, WorkerProcess, type TestDatabase } from '@gradpool/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let db: TestDatabase;
let coordinator: CoordinatorProcess;
let groupId: string;
let token: string;
let datasetId: string;
const workers: WorkerProcess[] = [];

/** The coordinator's REST API with its admin key (libs/testing's client). */
function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  return new AdminApi(() => coordinator.httpUrl, coordinator.adminKey).request<T>(method, path, body);
}

interface JobDetail {
  id: string;
  status: string;
  statusReason: string;
  round: number;
  epoch: number;
  samplesProcessed: number;
  lastMetrics: Record<string, { round: number; value: number }>;
}

/** Polls (the coordinator has no push for tests) until `check` returns a value. */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  db = await createTestDatabase('gp_e2e_training');
  coordinator = await CoordinatorProcess.start({ databaseUrl: db.url, heartbeatIntervalMs: 500, heartbeatMisses: 4, logLevel: process.env.GRADPOOL_TEST_LOG_LEVEL ?? 'warn' });
  groupId = (await api<{ id: string }>('POST', '/v1/groups', { name: 'e2e trainers' })).id;
  token = (await api<{ token: string }>('POST', `/v1/groups/${groupId}/tokens`, {})).token;
  datasetId = (await api<{ id: string }>('POST', '/v1/datasets', { builtin: 'mnist', seed: 1, name: `mnist-${Date.now().toString(36)}` })).id;
});

afterAll(async () => {
  for (const w of workers) await w[Symbol.asyncDispose]();
  await coordinator?.[Symbol.asyncDispose]();
  await db?.drop();
});

describe('training a job end to end', () => {
  it('two workers train the MNIST MLP for an epoch: each round committed once, every member hash = the keeper hash, every sample once, > 85 % test accuracy', async () => {
    for (let i = 1; i <= 2; i++) {
      workers.push(WorkerProcess.start({ coordinator: coordinator.grpcAddress, token, name: `e2e-trainer-${i}`, logLevel: 'debug' }));
    }
    const byRounds = process.env.GP_E2E_ROUNDS !== undefined;
    const rounds = Number(process.env.GP_E2E_ROUNDS ?? 0);
    const job = await api<{ id: string }>('POST', '/v1/jobs', {
      name: 'e2e mnist mlp',
      groupId,
      datasetId,
      model: { kind: 'mlp', inputShape: [784], hidden: [64], numClasses: 10 },
      optimizer: { kind: 'adam', lr: 0.002 },
      globalBatch: Number(process.env.GP_E2E_BATCH ?? 1024),
      ...(byRounds ? { rounds } : { epochs: 1 }),
      roundDeadlineMs: 5000,
      minWorkers: 2,
      maxWorkers: 2,
      checkpointEvery: 10,
      evalEvery: 10,
      seed: 3,
    });
    let last: JobDetail | undefined;
    try {
      last = await until(
        'finished job',
        async () => {
          const d = await api<JobDetail>('GET', `/v1/jobs/${job.id}`);
          last = d;
          return ['completed', 'failed', 'cancelled'].includes(d.status) ? d : undefined;
        },
        240_000,
      );
    } finally {
      if (process.env.GP_E2E_DUMP) {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(`${process.env.GP_E2E_DUMP}-coordinator.log`, coordinator.output());
        workers.forEach((w, i) => writeFileSync(`${process.env.GP_E2E_DUMP}-worker${i + 1}.log`, w.output()));
      }
      if (last?.status !== 'completed') {
        console.log(JSON.stringify(last));
        console.log(coordinator.output().split('\n').slice(-40).join('\n'));
        for (const w of workers) console.log(w.output().split('\n').filter((l) => /runner|fault|error|warn/i.test(l)).slice(-20).join('\n'));
      }
    }
    expect(last.status).toBe('completed');
    if (byRounds) expect(last.round).toBe(rounds - 1);
    const total = last.round + 1;
    const sql = new pg.Client({ connectionString: db.url });
    sql.on('error', () => undefined);
    await sql.connect();
    try {
      // Each round committed once, in order, with both workers' gradients.
      const committed = (await sql.query('select round, param_hash, contributors, loss from rounds where job_id = $1 order by round', [job.id])).rows;
      expect(committed.map((x) => Number(x.round))).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(committed.every((x) => (x.contributors as string[]).length === 2)).toBe(true);
      // Every member's parameter hash after every round equals the keeper's.
      for (const w of workers) {
        const done = w.logs().filter((l) => l.msg === 'round done');
        if (byRounds) expect(done.map((l) => l.round)).toEqual(committed.map((x) => Number(x.round)));
        else expect(done.length).toBeGreaterThanOrEqual(total);
        for (const l of done) expect(l.paramHash, `round ${String(l.round)}`).toBe(committed[Number(l.round)].param_hash);
      }
      if (!byRounds) {
        // Every train sample in exactly one committed gradient: Σ samples of the rounds = the train split.
        const ds = await api<{ splits: { train: { samples: number } } }>('GET', `/v1/datasets/${datasetId}`);
        const summed = (await sql.query('select sum(samples)::int as n from rounds where job_id = $1', [job.id])).rows[0].n;
        expect(ds.splits.train.samples).toBeGreaterThan(50_000);
        expect(summed).toBe(ds.splits.train.samples);
      }
      const mismatches = (await sql.query(`select count(*) from events where job_id = $1 and type = 'job.hash-mismatch'`, [job.id])).rows[0].count;
      expect(Number(mismatches)).toBe(0);
      const lossAt = (i: number) => Number(committed[i].loss);
      expect(lossAt(total - 1)).toBeLessThan(lossAt(0));
      const end = (await sql.query(`select data from events where job_id = $1 and type = 'job.state' and data->>'status' = 'completed'`, [job.id])).rows[0]?.data;
      console.log(`test accuracy after ${total} rounds: ${end?.testAccuracy}`);
      expect(end?.testAccuracy).toBeGreaterThan(byRounds ? 0.5 : 0.85);
    } finally {
      await sql.end();
    }
  });
});
