/**
 * Helpers for the jobs suites: an in-process coordinator (jobs settings shortened), a small
 * dataset written straight into Postgres (its shards stored as an import would store them),
 * and fake workers that speak the real session protocol over grpc-js.
 */
import { startCoordinator, toConfig, type CoordinatorHandle, type Env } from '@gradpool/coordinator';
import { createTestDatabase, TEST_NATS_URL, type TestDatabase } from '@gradpool/testing';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { CAPABILITIES, register, TestSession, waitFor, workerClient, type ApiResponse } from './foundation-helpers.js';
import { parseAssignedJob, roundOptimizer, type Capabilities, type CoordinatorMessage__Output, type RoundReport, type WorkerServiceClient } from '@gradpool/protocol';
import { RoundExchange, type AllReduceResult } from '@gradpool/exchange';
import { advanceDataState, decodeDataState, encodeDataState, encodeShard, freshDataState, planRound, sha256Hex, ShardStore } from '@gradpool/datasets';
import { createOptimizer, decodeCheckpoint, paramHash } from '@gradpool/training';
import { connect, type NatsConnection } from 'nats';

export interface JobsCoordinator {
  handle: CoordinatorHandle;
  adminKey: string;
  api: (method: string, path: string, body?: unknown, key?: string) => Promise<ApiResponse>;
  close: () => Promise<void>;
}

export interface JobsEnv {
  database: TestDatabase;
  sql: pg.Pool;
  adminKey: string;
  drop: () => Promise<void>;
}

export async function jobsEnv(): Promise<JobsEnv> {
  const database = await createTestDatabase('gp_jobs');
  const sql = new pg.Pool({ connectionString: database.url, max: 2 });
  // Dropping the database ends its sessions: that must not crash the test process.
  sql.on('error', () => undefined);
  sql.on('connect', (client) => client.on('error', () => undefined));
  return {
    database,
    sql,
    adminKey: `test-admin-${randomBytes(12).toString('hex')}`,
    drop: async () => {
      await sql.end();
      await database.drop();
    },
  };
}

/** Starts a coordinator on `env`'s database (several may share one: the leader test). */
export async function startJobsCoordinator(env: JobsEnv, extra: Env = {}, jobs: Record<string, unknown> = {}): Promise<JobsCoordinator> {
  const config = toConfig({
    DATABASE_URL: env.database.url,
    NATS_URL: TEST_NATS_URL,
    GRADPOOL_HTTP_HOST: '127.0.0.1',
    GRADPOOL_HTTP_PORT: '0',
    GRADPOOL_GRPC_HOST: '127.0.0.1',
    GRADPOOL_GRPC_PORT: '0',
    GRADPOOL_ADMIN_KEY: env.adminKey,
    GRADPOOL_HEARTBEAT_INTERVAL_MS: '200',
    GRADPOOL_HEARTBEAT_MISSES: '3',
    GRADPOOL_LEASE_MS: '30000',
    LOG_LEVEL: process.env.GRADPOOL_TEST_LOG_LEVEL ?? 'silent',
    ...extra,
  });
  const handle = await startCoordinator({ ...config, jobs: { scheduler: { periodMs: 200 }, ...jobs } } as typeof config);
  const api: JobsCoordinator['api'] = async (method, path, body, key = env.adminKey) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${handle.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed };
  };
  return { handle, adminKey: env.adminKey, api, close: () => handle.close() };
}

export const FEATURES = 4;
export const CLASSES = 3;
export const SHARDS = 4;
export const PER_SHARD = 50;

/**
 * A ready dataset (shape [4], 3 classes, 4 train shards of 50) written straight into Postgres,
 * its shards stored in the object store as the coordinator's import would (job submission
 * checks that they are there). `objects: false` leaves them out, as after a lost NATS store.
 */
export async function insertDataset(sql: pg.Pool, opts: { name?: string; objects?: boolean } = {}): Promise<string> {
  const name = opts.name ?? `ds-${randomBytes(3).toString('hex')}`;
  const r = await sql.query(
    `insert into datasets (name, format, status, feature_shape, num_classes, class_names, normalisation, options, ready_at)
     values ($1, 'csv', 'ready', '[4]', 3, '["a","b","c"]', '{"kind":"none"}', '{}', now()) returning id`,
    [name],
  );
  const id = r.rows[0].id as string;
  const nc = opts.objects === false ? null : await connect({ servers: TEST_NATS_URL });
  try {
    const store = nc && (await ShardStore.open(nc));
    for (let i = 0; i < SHARDS; i++) {
      const features = Float32Array.from({ length: PER_SHARD * FEATURES }, () => Math.random());
      const labels = Int32Array.from({ length: PER_SHARD }, (_, j) => j % CLASSES);
      const bytes = encodeShard({ count: PER_SHARD, shape: [FEATURES], normalisation: 'none' }, features, labels);
      const sha256 = store ? (await store.put(bytes)).sha256 : sha256Hex(bytes);
      await sql.query(`insert into shards (dataset_id, split, index, sample_count, bytes, sha256) values ($1, 'train', $2, $3, $4, $5)`, [id, i, PER_SHARD, bytes.byteLength, sha256]);
    }
  } finally {
    await nc?.close();
  }
  return id;
}

export function mlpSpec(datasetId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'tiny',
    datasetId,
    model: { kind: 'mlp', inputShape: [FEATURES], hidden: [8], numClasses: CLASSES },
    optimizer: { kind: 'sgd', lr: 0.1 },
    globalBatch: 20,
    rounds: 6,
    evalEvery: 0,
    checkpointEvery: 2,
    roundDeadlineMs: 5000,
    ...over,
  };
}

export async function groupWithToken(c: JobsCoordinator, name: string, allowPublicJobs = true): Promise<{ groupId: string; token: string }> {
  const g = await c.api('POST', '/v1/groups', { name, allowPublicJobs });
  if (g.status !== 201) throw new Error(`create group: ${g.status} ${JSON.stringify(g.body)}`);
  const t = await c.api('POST', `/v1/groups/${g.body.id}/tokens`, {});
  if (t.status !== 201) throw new Error(`create token: ${t.status} ${JSON.stringify(t.body)}`);
  return { groupId: g.body.id, token: t.body.token };
}

export interface FakeWorker {
  id: string;
  secret: string;
  /** The live session; replaced by `reconnect`. */
  session: TestSession;
  client: WorkerServiceClient;
  close: () => void;
}

/** Registers a worker and opens its session with heartbeats. */
export async function fakeWorker(c: JobsCoordinator, token: string, name: string, caps: Partial<Capabilities> = {}): Promise<FakeWorker> {
  const client = workerClient(c.handle.grpcAddress);
  const reg = await register(client, { joinToken: token, workerName: name, capabilities: { ...CAPABILITIES, ...caps } });
  const session = new TestSession(client, reg.workerId, reg.sessionSecret);
  await session.next('accepted');
  session.startHeartbeats(100);
  const w: FakeWorker = {
    id: reg.workerId,
    secret: reg.sessionSecret,
    session,
    client,
    close: () => {
      w.session.cancel();
      w.client.close();
    },
  };
  return w;
}

/** A fake worker, once the coordinator's database has it online. */
export async function onlineFakeWorker(c: JobsCoordinator, sql: pg.Pool, token: string, name: string, caps: Partial<Capabilities> = {}): Promise<FakeWorker> {
  const w = await fakeWorker(c, token, name, caps);
  await waitFor(async () => (await sql.query(`select status from workers where id = $1`, [w.id])).rows[0].status === 'online', `${name} online`);
  return w;
}

/** Opens a new session of the same worker identity on (another) coordinator. */
export async function reconnect(w: FakeWorker, c: JobsCoordinator): Promise<void> {
  w.session.cancel();
  w.client.close();
  w.client = workerClient(c.handle.grpcAddress);
  w.session = new TestSession(w.client, w.id, w.secret);
  const s = w.session;
  await s.next('accepted').catch(async (err: Error) => {
    const st = await s.status;
    throw new Error(`${err.message}: ${st.code} ${st.details}`);
  });
  w.session.startHeartbeats(100);
}

/** Seeded pseudo-gradient of one member in one round. */
export function gradient(size: number, seed: number): Float32Array {
  const g = new Float32Array(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    g[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return g;
}

export interface MemberRun {
  hashes: Map<number, string>;
  done: Promise<void>;
}

/**
 * A fake member: loads the checkpoint, runs rounds [roster.startRound, until) with the real
 * exchange and optimizer, reports each. `gate(r)` is awaited before round r.
 */
export function runMember(
  nc: NatsConnection,
  w: FakeWorker,
  a: CoordinatorMessage__Output,
  rosterMsg: CoordinatorMessage__Output,
  until: number,
  gate: (r: number) => Promise<void> = async () => undefined,
  opts: { clipNormRatio?: number; gradScale?: number } = {},
): MemberRun {
  const hashes = new Map<number, string>();
  const done = (async () => {
    const assignment = a.assignment!;
    const roster = rosterMsg.roster!;
    const job = parseAssignedJob(assignment.specJson);
    const os = await nc.jetstream().views.os(assignment.checkpointBucket);
    const cp = decodeCheckpoint((await os.getBlob(assignment.checkpointKey))!);
    const params = cp.params;
    const opt = createOptimizer(roundOptimizer(job.spec) as never, job.paramCount);
    opt.load(cp.optimizerState);
    const members = roster.members.map((m) => m.workerId);
    const me = roster.members.find((m) => m.workerId === w.id)!;
    const shares = roster.members.map((m) => m.samplesPerRound);
    const total = job.dataset.train.reduce((a, s) => a + s.samples, 0);
    let data = typeof cp.meta.dataState === 'string' ? decodeDataState(cp.meta.dataState, total) : freshDataState(total);
    let scaled: RoundReport['scaled'] = [];
    const ex = new RoundExchange({
      nc,
      jobId: job.jobId,
      size: job.paramCount,
      roster: { epoch: roster.epoch, members, selfId: w.id },
      codec: { name: 'fp32' },
      deadlineMs: 5000,
      clipNormRatio: opts.clipNormRatio,
      onClip: (sender, info) => scaled!.push({ workerId: sender, shard: info.shard, norm: info.norm, bound: info.bound }),
    });
    try {
      for (let r = Number(roster.startRound); r < until; r++) {
        await gate(r);
        const plan = planRound(data, shares);
        const n = plan.counts[me.index];
        const g = gradient(job.paramCount, r * 7919 + me.index + 1);
        if (opts.gradScale !== undefined) for (let i = 0; i < g.length; i++) g[i] *= opts.gradScale;
        scaled = [];
        const res: AllReduceResult = await ex.allReduce(r, g, n);
        opt.step(params, res.mean, r);
        data = advanceDataState(data, plan, members.map((id) => res.contributors.includes(id)), total);
        const hash = paramHash(params);
        hashes.set(r, hash);
        const report: RoundReport = {
          jobId: job.jobId,
          epoch: roster.epoch,
          round: r,
          loss: 1 / (r + 1),
          samples: n,
          contributors: res.contributors,
          paramHash: hash,
          computeMs: 5,
          exchangeMs: Math.round(res.timings.totalMs),
          waitMs: 0,
          bytesSent: res.bytesSent,
          bytesReceived: res.bytesReceived,
          exchangeEpoch: roster.epoch,
          dataState: encodeDataState(data),
          scaled,
        };
        w.session.call.write({ roundReport: report });
      }
    } finally {
      await ex.close();
    }
  })();
  done.catch((err) => process.stderr.write(`member ${w.id} failed: ${(err as Error).stack}\n`));
  return { hashes, done };
}

