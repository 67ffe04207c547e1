/**
 * The admin CLI (`gradpool …`) against a real coordinator, as an admin would use it: a group and a
 * join token, a worker that registers with it, a job submitted from a spec file and followed to its
 * end by `jobs submit --watch` while a member (real NATS exchange, fake compute) runs its rounds,
 * then show, metrics, model export and the errors of steps a finished job refuses.
 */
// The CLI is not part of the coordinator's library exports; tests call it in-process.
import { runCli } from '../../apps/coordinator/src/cli/run.js';
import { TEST_NATS_URL } from '@gradpool/testing';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeWorker, insertDataset, jobsEnv, mlpSpec, runMember, startJobsCoordinator, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

let env: JobsEnv;
let c: JobsCoordinator;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  env = await jobsEnv();
  c = await startJobsCoordinator(env);
  nc = await connect({ servers: TEST_NATS_URL });
  dir = await mkdtemp(join(tmpdir(), 'gp-admin-cli-'));
});
afterAll(async () => {
  await nc?.close();
  await c?.close();
  await env?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['--api', c.handle.httpUrl, ...argv], { GRADPOOL_ADMIN_KEY: c.adminKey }, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('gradpool groups, tokens, workers, jobs', () => {
  it('takes an admin from a new group to a trained job and its exported model', async () => {
    const group = await cli('groups', 'create', 'cli-lab', '--description', 'our GPUs', '--no-public-jobs');
    expect(group.code, group.err).toBe(0);
    expect(group.out).toMatch(/^created group cli-lab \([0-9a-f-]{36}\)/);
    expect((await cli('groups', 'show', 'cli-lab')).out).toMatch(/public jobs\s+no: its own jobs only/);

    // The token alone on stdout (scripts capture it); how to use it on stderr.
    const token = await cli('tokens', 'create', 'cli-lab', '--name', 'lab', '--max-uses', '2', '--expires-in', '7d');
    expect(token.code, token.err).toBe(0);
    expect(token.out).toMatch(/^gpj_[A-Za-z0-9_-]+$/);
    expect(token.err).toContain(`gradpool-worker join --coordinator <host:port> --token ${token.out}`);
    const tokens = await cli('tokens', 'list', 'cli-lab');
    expect(tokens.out.split('\n')[1]).toMatch(/lab\s+gpj_\S+…\s+usable\s+0\s+2\s+\d{4}-\d\d-\d\d/);
    expect(tokens.out).not.toContain(token.out);

    const w = await fakeWorker(c, token.out, 'cli-worker');
    try {
      const workers = await cli('workers', 'list', '--group', 'cli-lab');
      expect(workers.code, workers.err).toBe(0);
      expect(workers.out).toMatch(/cli-worker\s+online/);

      const datasetId = await insertDataset(env.sql, { name: 'cli-ds' });
      const specFile = join(dir, 'spec.json');
      const { datasetId: _omitted, ...spec } = mlpSpec(datasetId, { name: 'cli-job', rounds: 4, checkpointEvery: 2 });
      await writeFile(specFile, JSON.stringify(spec));
      const submitted = cli('jobs', 'submit', specFile, '--dataset', 'cli-ds', '--group', 'cli-lab', '--watch');
      const a = await w.session.next('assignment');
      const r = await w.session.next('roster');
      await runMember(nc, w, a, r, 4).done;
      const run = await submitted;
      expect(run.code, run.err).toBe(0);
      expect(run.out).toMatch(/^submitted cli-job \([0-9a-f-]{36}\): queued/);
      expect(run.out).toMatch(/roster epoch 1: 1 member, \+1 \(start\) from round 0/);
      expect(run.out).toMatch(/completed/);

      const show = await cli('jobs', 'show', 'cli-job');
      expect(show.out).toMatch(/status\s+completed/);
      expect(show.out).toMatch(/round\s+4 of 4/);
      expect(show.out).toMatch(/exchange\s+codec \w+; clipped mean \(ratio 3\)\n/);
      expect(show.out).toMatch(/cli-worker\s+80\s+4/); // credit: 4 rounds of 20 samples
      const metrics = await cli('jobs', 'metrics', 'cli-job', '--from', '2');
      expect(metrics.out.split('\n').map((l) => l.trim().split(/\s+/)[0])).toEqual(['ROUND', '2', '3']);

      const out = join(dir, 'model');
      const model = await cli('jobs', 'model', 'cli-job', '--out', out);
      expect(model.code, model.err).toBe(0);
      const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as { format: string; weightsManifest: { paths: string[] }[] };
      expect(json.format).toBe('layers-model');
      expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
      // 4 → 8 → 3: (4·8 + 8) + (8·3 + 3) float32 parameters.
      expect((await readFile(join(out, 'weights.bin'))).byteLength).toBe(4 * (4 * 8 + 8 + 8 * 3 + 3));

      const pause = await cli('jobs', 'pause', 'cli-job');
      expect(pause.code).toBe(1);
      expect(pause.err).toMatch(/^gradpool: job cli-job is completed; only queued or running jobs pause \(HTTP 409\)$/);
      const watched = await cli('jobs', 'watch', 'cli-job');
      expect(watched.code).toBe(0);
      expect(watched.out).toBe('cli-job: completed (finished after round 3)');

      // Exclusions: none, then one (as a fault leaves it), shown and lifted by name.
      expect((await cli('jobs', 'exclusions', 'cli-job')).out).toBe('no worker is kept out of this job');
      const notKept = await cli('jobs', 'readmit', 'cli-job', 'cli-worker');
      expect(notKept.code).toBe(1);
      expect(notKept.err).toMatch(/^gradpool: worker [0-9a-f-]{36} is not kept out of job cli-job \(HTTP 404\)$/);
      await env.sql.query(`insert into job_exclusions (job_id, worker_id, kind, reason, until) select j.id, w.id, 'bad-chunk', 'a chunk failed its hash', now() + interval '5 minutes' from jobs j, workers w where j.name = 'cli-job' and w.name = 'cli-worker'`);
      const kept = await cli('jobs', 'exclusions', 'cli-job');
      expect(kept.out.split('\n')[1]).toMatch(/^cli-worker\s+bad-chunk\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+a chunk failed its hash$/);
      expect((await cli('jobs', 'show', 'cli-job')).out).toMatch(/kept out \(gradpool jobs readmit cli-job <worker> lets one back in\):\n.*\n\s+cli-worker\s+bad-chunk/);
      expect((await cli('workers', 'show', 'cli-worker')).out).toMatch(/kept out of \(gradpool jobs readmit <job> cli-worker lets it back in\):\n.*\n\s+cli-job\s+bad-chunk\s+\S+ \S+\s+a chunk failed its hash/);
      const readmit = await cli('jobs', 'readmit', 'cli-job', 'cli-worker');
      expect(readmit.code, readmit.err).toBe(0);
      expect(readmit.out).toMatch(/^cli-worker may serve the job again \(kept out until .* after bad-chunk: a chunk failed its hash\)$/);
      expect((await cli('jobs', 'exclusions', 'cli-job')).out).toBe('no worker is kept out of this job');

      const drain = await cli('workers', 'drain', 'cli-worker');
      expect(drain.code, drain.err).toBe(0);
    } finally {
      w.close();
    }
  });

  it('refuses what it cannot do with a message and a non-zero exit', async () => {
    expect(await cli('jobs', 'show', 'no-such-job')).toMatchObject({ code: 1, err: 'gradpool: no job named "no-such-job"' });
    const missing = join(dir, 'missing.json');
    expect(await cli('jobs', 'submit', missing)).toMatchObject({ code: 2, err: `gradpool: file not found: ${missing}` });
    const notJson = join(dir, 'bad.json');
    await writeFile(notJson, '{ name: ');
    const bad = await cli('jobs', 'submit', notJson);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/bad\.json is not JSON/);
    const invalid = join(dir, 'invalid.json');
    await writeFile(invalid, JSON.stringify({ name: 'x' }));
    const refused = await cli('jobs', 'submit', invalid);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/\(HTTP 422\)$/);
    expect((await cli('tokens', 'create', 'cli-lab', '--expires-in', 'soon')).code).toBe(2);
    expect(await cli('workers', 'drain', 'nobody')).toMatchObject({ code: 1, err: 'gradpool: no worker named "nobody"' });
  });
});
