/**
 * The keeper evaluates on real shards: a CSV dataset imported through the API (train /
 * validation / test splits in the object store), a job run by fake members; validation metrics
 * every evalEvery rounds, test metrics at the end, the exported model stored.
 */
import { TEST_NATS_URL } from '@gradpool/testing';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './foundation-helpers.js';
import { fakeWorker, groupWithToken, jobsEnv, mlpSpec, runMember, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let nc: NatsConnection;
/** The keeper's `beforeValidation` seam, set by a test. */
let beforeValidation: ((jobId: string, round: number) => Promise<void>) | undefined;

beforeAll(async () => {
  env = await jobsEnv();
  c = await startJobsCoordinator(env, {}, { keeper: { reportGraceMs: 3000, beforeValidation: async (jobId: string, round: number) => beforeValidation?.(jobId, round) } });
  nc = await connect({ servers: TEST_NATS_URL });
});

/** A small CSV dataset with validation and test splits, imported through the API. */
async function evalDataset(name: string): Promise<string> {
  const rows = Array.from({ length: 600 }, (_, i) => `${i % 5},${(i * 7) % 11},${i % 3},${(i * 13) % 17},${i % 3}`);
  const up = await fetch(`${c.handle.httpUrl}/v1/datasets/uploads?name=${name}.csv`, {
    method: 'POST',
    headers: { authorization: `Bearer ${c.adminKey}`, 'content-type': 'application/octet-stream' },
    body: new TextEncoder().encode(`a,b,c,d,label\n${rows.join('\n')}\n`),
  });
  const upload = (await up.json()) as { uploadId: string };
  const ds = await c.api('POST', '/v1/datasets', { name, format: 'csv', files: [upload.uploadId], validationFraction: 0.2, testFraction: 0.2, shardBytes: 4096, seed: 1 });
  expect(ds.status, JSON.stringify(ds.body)).toBe(201);
  return ds.body.id as string;
}
afterAll(async () => {
  await nc?.close();
  await c?.close();
  await env?.drop();
});

describe('keeper evaluation', () => {
  it('records val_accuracy every evalEvery rounds and test_accuracy at the end', async () => {
    const datasetId = await evalDataset('eval');
    const ds = await c.api('GET', `/v1/datasets/${datasetId}`);
    expect(ds.body.counts.validation).toBeGreaterThan(0);
    expect(ds.body.counts.test).toBeGreaterThan(0);

    const { groupId, token } = await groupWithToken(c, 'eval');
    const w = await fakeWorker(c, token, 'ev');
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'eval', groupId, rounds: 4, evalEvery: 2, checkpointEvery: 10, globalBatch: 16 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    const a = await w.session.next('assignment');
    const r = await w.session.next('roster');
    await runMember(nc, w, a, r, 4).done;
    await waitFor(async () => (await c.api('GET', `/v1/jobs/${jobId}`)).body.status === 'completed', 'completed');
    const metrics = (await c.api('GET', `/v1/jobs/${jobId}/metrics`)).body as Record<string, number>[];
    const byRound = new Map(metrics.map((m) => [m.round, m]));
    for (const round of [1, 3]) {
      expect(byRound.get(round)!.val_accuracy).toBeGreaterThanOrEqual(0);
      expect(byRound.get(round)!.val_accuracy).toBeLessThanOrEqual(1);
    }
    expect(byRound.get(0)!.val_accuracy).toBeUndefined();
    expect(byRound.get(3)!.test_accuracy).toBeGreaterThanOrEqual(0);
    expect(byRound.get(3)!.test_loss).toBeGreaterThan(0);
    const done = await env.sql.query(`select data from events where job_id = $1 and type = 'job.state' and data->>'status' = 'completed'`, [jobId]);
    expect(done.rows[0].data.model).toEqual({ bucket: 'gp_models', key: jobId });
    w.close();
  });

  it('commits rounds while a validation runs; its metrics land on its round when it ends, and one due meanwhile is skipped', async () => {
    const datasetId = await evalDataset('eval-async');
    const { groupId, token } = await groupWithToken(c, 'eval-async');
    const w = await fakeWorker(c, token, 'ea');
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'eval-async', groupId, rounds: 6, evalEvery: 2, checkpointEvery: 10, globalBatch: 16 }));
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const jobId = sub.body.id as string;
    const committed = async () => Number((await env.sql.query(`select coalesce(max(round), -1) as r from rounds where job_id = $1`, [jobId])).rows[0].r);
    // Round 1's validation is held until the keeper has committed round 3 (its commits must not wait for it).
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const seen: number[] = [];
    beforeValidation = async (id, round) => {
      if (id !== jobId) return;
      seen.push(round);
      if (round === 1) await held;
    };
    try {
      const a = await w.session.next('assignment');
      const r = await w.session.next('roster');
      const member = runMember(nc, w, a, r, 6);
      await waitFor(async () => (await committed()) >= 3, 'round 3 committed while round 1 is being validated');
      const early = (await c.api('GET', `/v1/jobs/${jobId}/metrics`)).body as Record<string, number>[];
      expect(early.find((m) => m.round === 1)?.val_accuracy).toBeUndefined();
      release();
      await member.done;
      await waitFor(async () => (await c.api('GET', `/v1/jobs/${jobId}`)).body.status === 'completed', 'completed');
    } finally {
      release();
      beforeValidation = undefined;
    }
    const metrics = (await c.api('GET', `/v1/jobs/${jobId}/metrics`)).body as Record<string, number>[];
    const byRound = new Map(metrics.map((m) => [m.round, m]));
    expect(byRound.get(1)!.val_accuracy).toBeGreaterThanOrEqual(0);
    expect(byRound.get(1)!.val_loss).toBeGreaterThan(0);
    // Round 3's fell due while round 1's was held: skipped. The last round is evaluated at the end.
    expect(seen).toEqual([1]);
    expect(byRound.get(3)!.val_accuracy).toBeUndefined();
    expect(byRound.get(5)!.val_accuracy).toBeGreaterThanOrEqual(0);
    expect(byRound.get(5)!.test_accuracy).toBeGreaterThanOrEqual(0);
    w.close();
  });
});
