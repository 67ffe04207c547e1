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

describe('keeper evaluation', () => {
  it('records val_accuracy every evalEvery rounds and test_accuracy at the end', async () => {
    const rows = Array.from({ length: 600 }, (_, i) => `${i % 5},${(i * 7) % 11},${i % 3},${(i * 13) % 17},${i % 3}`);
    const up = await fetch(`${c.handle.httpUrl}/v1/datasets/uploads?name=eval.csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${c.adminKey}`, 'content-type': 'application/octet-stream' },
      body: new TextEncoder().encode(`a,b,c,d,label\n${rows.join('\n')}\n`),
    });
    const upload = (await up.json()) as { uploadId: string };
    const ds = await c.api('POST', '/v1/datasets', { name: 'eval', format: 'csv', files: [upload.uploadId], validationFraction: 0.2, testFraction: 0.2, shardBytes: 4096, seed: 1 });
    expect(ds.status, JSON.stringify(ds.body)).toBe(201);
    expect(ds.body.counts.validation).toBeGreaterThan(0);
    expect(ds.body.counts.test).toBeGreaterThan(0);

    const { groupId, token } = await groupWithToken(c, 'eval');
    const w = await fakeWorker(c, token, 'ev');
    const sub = await c.api('POST', '/v1/jobs', mlpSpec(ds.body.id, { name: 'eval', groupId, rounds: 4, evalEvery: 2, checkpointEvery: 10, globalBatch: 16 }));
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
});
