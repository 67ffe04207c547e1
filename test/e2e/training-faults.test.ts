// Training end to end under churn: the real coordinator process and real worker processes on
// the MNIST MLP. A third worker joins mid-job (it catches up from checkpoint + the keeper's
// updates stream and trains on), then a worker is killed with SIGKILL mid-round (the round is
// re-run or completed without it, and the job goes on with the rest). Every round is committed
// once, in order, and every member's parameter hash equals the keeper's at every round it ran.
import { AdminApi, CoordinatorProcess, createTestDatabase, WorkerProcess, type TestDatabase } from '@gradpool/testing';
import { writeFileSync } from 'node:fs';
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
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startWorker(i: number): WorkerProcess {
  const w = WorkerProcess.start({ coordinator: coordinator.grpcAddress, token, name: `e2e-churn-${i}`, logLevel: 'debug' });
  workers.push(w);
  return w;
}

beforeAll(async () => {
  db = await createTestDatabase('gp_e2e_churn');
  coordinator = await CoordinatorProcess.start({ databaseUrl: db.url, heartbeatIntervalMs: 500, heartbeatMisses: 6, logLevel: process.env.GRADPOOL_TEST_LOG_LEVEL ?? 'info' });
  groupId = (await api<{ id: string }>('POST', '/v1/groups', { name: 'e2e churn' })).id;
  token = (await api<{ token: string }>('POST', `/v1/groups/${groupId}/tokens`, {})).token;
  datasetId = (await api<{ id: string }>('POST', '/v1/datasets', { builtin: 'mnist', seed: 1, name: `mnist-${Date.now().toString(36)}` })).id;
});

afterAll(async () => {
  for (const w of workers) await w[Symbol.asyncDispose]();
  await coordinator?.[Symbol.asyncDispose]();
  await db?.drop();
});

describe('training under churn', () => {
  it('a late joiner catches up and contributes; a SIGKILLed member is dropped; every hash equals the keeper\'s', async () => {
    const [w1, w2] = [startWorker(1), startWorker(2)];
    const rounds = 120;
    const job = await api<{ id: string }>('POST', '/v1/jobs', {
      name: 'e2e churn mlp',
      groupId,
      datasetId,
      model: { kind: 'mlp', inputShape: [784], hidden: [64], numClasses: 10 },
      optimizer: { kind: 'adam', lr: 0.002 },
      globalBatch: 256,
      rounds,
      // Generous: on a loaded 2-core machine a member may take seconds per round; a SIGKILL is seen at once anyway (its session closes).
      roundDeadlineMs: 10_000,
      minWorkers: 2,
      maxWorkers: 3,
      checkpointEvery: 5,
      evalEvery: 0,
      seed: 5,
    });
    let last: JobDetail | undefined;
    let w3: WorkerProcess | undefined;
    try {
      await w1.waitForLog('round done', {}, 120_000);
      w3 = startWorker(3);
      // It catches up, then trains a few rounds with the others before w1 dies.
      await w3.waitForLog('round done', {}, 120_000);
      const joinedAt = Number((await w3.waitForLog('round done', {}, 60_000)).round);
      await w3.waitForLine((l) => l.json?.msg === 'round done' && Number(l.json.round) >= joinedAt + 3, 'three more rounds', 60_000);
      await w1.kill();
      last = await until(
        'finished job',
        async () => {
          const d = await api<JobDetail>('GET', `/v1/jobs/${job.id}`);
          last = d;
          return ['completed', 'failed', 'cancelled'].includes(d.status) ? d : undefined;
        },
        400_000,
      );
    } finally {
      if (last?.status !== 'completed') {
        console.log(JSON.stringify(last));
        console.log(coordinator.output().split('\n').filter((l) => /roster|fault|resync|differs|offline|waits/.test(l)).slice(-30).join('\n'));
        for (const w of workers) console.log(w.output().split('\n').filter((l) => /"level":[345]0/.test(l) && /runner|fault|roster|stopping/.test(l)).slice(-15).join('\n'));
        // Left running, it would take the next test's workers.
        await api('POST', `/v1/jobs/${job.id}/cancel`).catch(() => undefined);
      }
      if (process.env.GP_E2E_DUMP) {
        writeFileSync(`${process.env.GP_E2E_DUMP}-coordinator.log`, coordinator.output());
        workers.forEach((w, i) => writeFileSync(`${process.env.GP_E2E_DUMP}-worker${i + 1}.log`, w.output()));
      }
    }
    expect(last.status, last.statusReason).toBe('completed');
    const sql = new pg.Client({ connectionString: db.url });
    sql.on('error', () => undefined);
    await sql.connect();
    try {
      const committed = (await sql.query('select round, param_hash, contributors from rounds where job_id = $1 order by round', [job.id])).rows;
      expect(committed.map((x) => Number(x.round))).toEqual(Array.from({ length: rounds }, (_, i) => i));
      const hashOf = new Map(committed.map((x) => [Number(x.round), x.param_hash as string]));
      const ids = new Map<WorkerProcess, string>();
      for (const w of [w1, w2, w3!]) {
        const done = w.logs().filter((l) => l.msg === 'round done');
        expect(done.length, w.output().slice(-2000)).toBeGreaterThan(0);
        ids.set(w, String(done[0].workerId));
        // A re-run round is logged again in the new epoch; its last report is what counts.
        const lastByRound = new Map(done.map((l) => [Number(l.round), String(l.paramHash)]));
        for (const [r, h] of lastByRound) expect(h, `${String(done[0].workerId)} round ${r}`).toBe(hashOf.get(r));
      }
      // The late joiner caught up without a peer and contributed to rounds after it joined.
      expect(w3!.logs().some((l) => l.msg === 'checkpoint loaded')).toBe(true);
      const joined = committed.filter((x) => (x.contributors as string[]).includes(ids.get(w3!)!));
      expect(joined.length).toBeGreaterThan(0);
      // The killed worker is in no round after the ones around its death, and the job finished with the others.
      const lastOfW1 = Math.max(...committed.filter((x) => (x.contributors as string[]).includes(ids.get(w1)!)).map((x) => Number(x.round)));
      expect(lastOfW1).toBeLessThan(rounds - 1);
      expect(committed[rounds - 1].contributors).toEqual(expect.arrayContaining([ids.get(w2), ids.get(w3!)]));
      const mismatches = (await sql.query(`select count(*) from events where job_id = $1 and type = 'job.hash-mismatch'`, [job.id])).rows[0].count;
      expect(Number(mismatches)).toBe(0);
    } finally {
      await sql.end();
    }
  });

  it('the coordinator is killed (SIGKILL) and restarted mid-job: the job resumes, no round lost or committed twice, hashes equal', async () => {
    // The workers of the test before would be as eligible as these two: this job is for a and b.
    for (const w of workers.splice(0)) await w[Symbol.asyncDispose]();
    const [a, b] = [startWorker(11), startWorker(12)];
    const rounds = 80;
    const job = await api<{ id: string }>('POST', '/v1/jobs', {
      name: 'e2e coordinator crash',
      groupId,
      datasetId,
      model: { kind: 'mlp', inputShape: [784], hidden: [32], numClasses: 10 },
      optimizer: { kind: 'momentum', lr: 0.05 },
      globalBatch: 256,
      rounds,
      roundDeadlineMs: 10_000,
      minWorkers: 2,
      maxWorkers: 2,
      checkpointEvery: 10,
      evalEvery: 0,
      seed: 9,
    });
    let last: JobDetail | undefined;
    try {
      await a.waitForLine((l) => l.json?.msg === 'round done' && Number(l.json.round) >= 25, 'round 25', 120_000);
      await coordinator.kill('SIGKILL');
      await coordinator.restart();
      last = await until(
        'finished job',
        async () => {
          const d = await api<JobDetail>('GET', `/v1/jobs/${job.id}`).catch(() => undefined);
          last = d ?? last;
          return d && ['completed', 'failed', 'cancelled'].includes(d.status) ? d : undefined;
        },
        400_000,
      );
    } finally {
      if (process.env.GP_E2E_DUMP) {
        writeFileSync(`${process.env.GP_E2E_DUMP}-crash-coordinator.log`, coordinator.output());
        [a, b].forEach((w, i) => writeFileSync(`${process.env.GP_E2E_DUMP}-crash-worker${i + 1}.log`, w.output()));
      }
      if (last?.status !== 'completed') console.log(JSON.stringify(last));
    }
    expect(last.status, last.statusReason).toBe('completed');
    const sql = new pg.Client({ connectionString: db.url });
    sql.on('error', () => undefined);
    await sql.connect();
    try {
      const committed = (await sql.query('select round, param_hash from rounds where job_id = $1 order by round', [job.id])).rows;
      expect(committed.map((x) => Number(x.round))).toEqual(Array.from({ length: rounds }, (_, i) => i));
      const hashOf = new Map(committed.map((x) => [Number(x.round), x.param_hash as string]));
      for (const w of [a, b]) {
        const lastByRound = new Map(w.logs().filter((l) => l.msg === 'round done').map((l) => [Number(l.round), String(l.paramHash)]));
        // Rounds it ran that were committed carry the keeper's hash (a round re-run after the crash counts once, its last run).
        for (const [r, h] of lastByRound) expect(h, `round ${r}`).toBe(hashOf.get(r));
      }
    } finally {
      await sql.end();
    }
  });
});
