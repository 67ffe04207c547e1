/**
 * Jobs API through an in-process coordinator: bad specs are 422 naming the problem with nothing
 * written or scheduled; a good spec writes the job and checkpoint 0; roles; pause/resume/cancel
 * state rules; the exported model loads with tf.loadLayersModel.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertDataset, jobsEnv, mlpSpec, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let datasetId: string;

beforeAll(async () => {
  env = await jobsEnv();
  // No scheduling here: the API alone.
  c = await startJobsCoordinator(env, {}, { scheduler: { enabled: false } });
  datasetId = await insertDataset(env.sql);
});
afterAll(async () => {
  await c?.close();
  await env?.drop();
});

async function counts(): Promise<{ jobs: number; checkpoints: number; rosters: number }> {
  const q = async (t: string) => Number((await env.sql.query(`select count(*) from ${t}`)).rows[0].count);
  return { jobs: await q('jobs'), checkpoints: await q('checkpoints'), rosters: await q('rosters') };
}

describe('POST /v1/jobs', () => {
  it('refuses bad specs with 422 naming the problem, and writes nothing', async () => {
    const before = await counts();
    const cases: [Record<string, unknown>, RegExp][] = [
      [mlpSpec('00000000-0000-4000-8000-00000000abcd'), /datasetId: no dataset/],
      [mlpSpec(datasetId, { model: { kind: 'mlp', inputShape: [5], hidden: [8], numClasses: 3 } }), /model\.inputShape: \[5\] does not fit/],
      [mlpSpec(datasetId, { model: { kind: 'mlp', inputShape: [4], hidden: [8], numClasses: 7 } }), /model\.numClasses: is 7 but the dataset has 3/],
      [mlpSpec(datasetId, { optimizer: { kind: 'rmsprop', lr: 0.1 } }), /optimizer\.kind/],
      [mlpSpec(datasetId, { minWorkers: 3, maxWorkers: 2 }), /minWorkers: is 3, more than maxWorkers \(2\)/],
      [mlpSpec(datasetId, { globalBatch: 0 }), /globalBatch/],
      [mlpSpec(datasetId, { codec: 'zip' }), /codec: unknown codec/],
      [mlpSpec(datasetId, { model: { kind: 'transformer' } }), /model\.kind/],
      [mlpSpec(datasetId, { loss: 'mse' }), /loss: is mse but model\.loss is cross-entropy/],
      [mlpSpec(datasetId, { localSteps: 4, outerOptimizer: { kind: 'nesterov', lr: -1 } }), /outerOptimizer\.lr/],
      [mlpSpec(datasetId, { outerOptimizer: { kind: 'sgd', lr: 1 } }), /outerOptimizer: applies only with localSteps > 1/],
      [{ name: 'x' }, /model|datasetId/],
    ];
    for (const [body, re] of cases) {
      const r = await c.api('POST', '/v1/jobs', body);
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.message).toMatch(re);
    }
    expect(await counts()).toEqual(before);
  });

  it('accepts a good spec: queued, defaults filled, checkpoint 0 written', async () => {
    const r = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'good' }));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ name: 'good', status: 'queued', round: -1, dataEpoch: 0, epochs: r.body.spec.epochs ?? null, roster: null });
    expect(r.body.spec).toMatchObject({ codec: 'fp32', minWorkers: 1, maxWorkers: 8, quorum: 0.5, seed: 0, groupId: null });
    expect(r.body.spec.model).toMatchObject({ activation: 'relu', loss: 'cross-entropy' });
    expect(r.body.spec.optimizer).toMatchObject({ kind: 'sgd', lr: 0.1, schedule: { kind: 'constant' } });
    const cps = await c.api('GET', `/v1/jobs/${r.body.id}/checkpoints`);
    expect(cps.body).toEqual([expect.objectContaining({ round: 0, key: 'round-0', bucket: `gp_ckpt_${r.body.id}` })]);
    expect(r.body.spec.localSteps).toBe(1);
    expect(r.body.spec.outerOptimizer).toBeUndefined();
    // With local steps, the outer optimizer is stored with its defaults filled in.
    const local = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'local', localSteps: 4 }));
    expect(local.status, JSON.stringify(local.body)).toBe(201);
    expect(local.body.spec.outerOptimizer).toMatchObject({ kind: 'sgd', lr: 1, schedule: { kind: 'constant' } });
    const list = await c.api('GET', '/v1/jobs?status=queued');
    expect(list.body.map((j: { id: string }) => j.id)).toContain(r.body.id);
    // The list carries the pass count too (the dashboard shows "data epoch k / n").
    expect(list.body.find((j: { id: string }) => j.id === r.body.id).epochs).toBe(r.body.spec.epochs ?? null);
  });

  it('lets a viewer read but not submit or steer', async () => {
    const key = await c.api('POST', '/v1/api-keys', { name: 'viewer', role: 'viewer' });
    expect(key.status).toBe(201);
    const viewer = key.body.key as string;
    const job = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'roles' }));
    expect((await c.api('POST', '/v1/jobs', mlpSpec(datasetId), viewer)).status).toBe(403);
    expect((await c.api('GET', `/v1/jobs/${job.body.id}`, undefined, viewer)).status).toBe(200);
    expect((await c.api('POST', `/v1/jobs/${job.body.id}/pause`, undefined, viewer)).status).toBe(403);
    const kept = await c.api('GET', `/v1/jobs/${job.body.id}/exclusions`, undefined, viewer);
    expect([kept.status, kept.body]).toEqual([200, []]);
    expect((await c.api('DELETE', `/v1/jobs/${job.body.id}/exclusions/00000000-0000-4000-8000-000000000000`, undefined, viewer)).status).toBe(403);
    expect((await c.api('GET', `/v1/jobs/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
  });

  it('pauses, resumes and cancels with state rules', async () => {
    const job = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'steer' }));
    const id = job.body.id as string;
    expect((await c.api('POST', `/v1/jobs/${id}/resume`)).status).toBe(409);
    expect((await c.api('POST', `/v1/jobs/${id}/pause`)).body.status).toBe('paused');
    expect((await c.api('POST', `/v1/jobs/${id}/resume`)).body.status).toBe('queued');
    expect((await c.api('POST', `/v1/jobs/${id}/cancel`)).body.status).toBe('cancelled');
    expect((await c.api('POST', `/v1/jobs/${id}/cancel`)).status).toBe(409);
    const events = await env.sql.query(`select type, data->>'status' as status from events where job_id = $1 order by id`, [id]);
    expect(events.rows.map((e) => e.status)).toEqual(['queued', 'paused', 'queued', 'cancelled']);
  });

  it('streams the job events as server-sent events: the stored ones, then live ones', async () => {
    const job = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'sse' }));
    const ac = new AbortController();
    const res = await fetch(`${c.handle.httpUrl}/v1/jobs/${job.body.id}/events`, { headers: { authorization: `Bearer ${env.adminKey}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const read = async (until: RegExp) => {
      while (!until.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${text}`);
        text += new TextDecoder().decode(value);
      }
    };
    await read(/event: job\.state\n(id: \d+\n)?data: .*"status":"queued"/);
    await c.api('POST', `/v1/jobs/${job.body.id}/pause`);
    await read(/event: job\.state\n(id: \d+\n)?data: .*"status":"paused"/);
    ac.abort();
    expect((await fetch(`${c.handle.httpUrl}/v1/jobs/${job.body.id}/events`)).status).toBe(401);
  });

  it('exports the model of checkpoint 0 in a form tf.loadLayersModel reads', async () => {
    const job = await c.api('POST', '/v1/jobs', mlpSpec(datasetId, { name: 'export' }));
    const m = await c.api('GET', `/v1/jobs/${job.body.id}/model`);
    expect(m.status, JSON.stringify(m.body).slice(0, 300)).toBe(200);
    expect(m.body).toMatchObject({ round: 0, format: expect.any(String) });
    const bytes = Buffer.from(m.body.weightData, 'base64');
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: m.body.modelTopology, weightSpecs: m.body.weightSpecs, weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }),
    );
    const out = model.predict(tf.zeros([2, 4])) as tf.Tensor;
    expect(out.shape).toEqual([2, 3]);
    tf.dispose(out);
    model.dispose();
  });
});
