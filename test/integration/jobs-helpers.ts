/**
 * Helpers for the jobs suites: an in-process coordinator (jobs settings shortened), a small
 * dataset written straight into Postgres (shards' bytes are not needed by the control plane),
 * and fake workers that speak the real session protocol over grpc-js.
 */
import { startCoordinator, toConfig, type CoordinatorHandle, type Env } from '@gradpool/coordinator';
import { createTestDatabase, TEST_NATS_URL, type TestDatabase } from '@gradpool/testing';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { CAPABILITIES, register, TestSession, workerClient, type ApiResponse } from './foundation-helpers.js';
import type { Capabilities, WorkerServiceClient } from '@gradpool/protocol';

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

/** A ready dataset (shape [4], 3 classes, 4 train shards of 50, one validation shard) in Postgres only. */
export async function insertDataset(sql: pg.Pool, name = `ds-${randomBytes(3).toString('hex')}`): Promise<string> {
  const r = await sql.query(
    `insert into datasets (name, format, status, feature_shape, num_classes, class_names, normalisation, options, ready_at)
     values ($1, 'csv', 'ready', '[4]', 3, '["a","b","c"]', '{"kind":"none"}', '{}', now()) returning id`,
    [name],
  );
  const id = r.rows[0].id as string;
  for (let i = 0; i < SHARDS; i++) {
    await sql.query(`insert into shards (dataset_id, split, index, sample_count, bytes, sha256) values ($1, 'train', $2, $3, 1000, $4)`, [
      id,
      i,
      PER_SHARD,
      randomBytes(32).toString('hex'),
    ]);
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
  return {
    id: reg.workerId,
    session,
    client,
    close: () => {
      session.cancel();
      client.close();
    },
  };
}
