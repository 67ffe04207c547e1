/**
 * Helpers for the foundation suites: an in-process coordinator on a fresh database (ports 0),
 * a real grpc-js WorkerService client, the admin API over fetch, and deadline-driven polling.
 */
import * as grpc from '@grpc/grpc-js';
import {
  GRPC_CHANNEL_OPTIONS,
  SESSION_METADATA,
  loadWorkerProto,
  type Capabilities,
  type CoordinatorMessage__Output,
  type RegisterRequest,
  type RegisterResponse__Output,
  type WorkerMessage,
  type WorkerServiceClient,
} from '@gradpool/protocol';
import { createTestDatabase, TEST_NATS_URL, type TestDatabase } from '@gradpool/testing';
import { startCoordinator, toConfig, type CoordinatorConfig, type CoordinatorHandle, type Env } from '@gradpool/coordinator';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface TestCoordinator {
  handle: CoordinatorHandle;
  database: TestDatabase;
  adminKey: string;
  /** A raw SQL client on the coordinator's database (for asserting rows and shaping state). */
  sql: pg.Pool;
  api: (method: string, path: string, opts?: { body?: unknown; key?: string | null; headers?: Record<string, string> }) => Promise<ApiResponse>;
  client: () => WorkerServiceClient;
  close: () => Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read JSON bodies loosely
export interface ApiResponse<T = any> {
  status: number;
  body: T;
}

/** The configuration of an in-process test coordinator: loopback, free ports, the test NATS. */
export function inProcessConfig(databaseUrl: string, adminKey: string, env: Env = {}): CoordinatorConfig {
  return toConfig({
    DATABASE_URL: databaseUrl,
    NATS_URL: TEST_NATS_URL,
    GRADPOOL_HTTP_HOST: '127.0.0.1',
    GRADPOOL_HTTP_PORT: '0',
    GRADPOOL_GRPC_HOST: '127.0.0.1',
    GRADPOOL_GRPC_PORT: '0',
    GRADPOOL_ADMIN_KEY: adminKey,
    LOG_LEVEL: process.env.GRADPOOL_TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
}

/** Starts a coordinator in-process on a fresh database with small heartbeat intervals. */
export async function startTestCoordinator(env: Env = {}): Promise<TestCoordinator> {
  const database = await createTestDatabase('gp_found');
  const adminKey = `test-admin-${randomBytes(12).toString('hex')}`;
  const config = inProcessConfig(database.url, adminKey, {
    GRADPOOL_HEARTBEAT_INTERVAL_MS: '200',
    GRADPOOL_HEARTBEAT_MISSES: '3',
    GRADPOOL_LEASE_MS: '30000',
    ...env,
  });
  const handle = await startCoordinator(config);
  const sql = new pg.Pool({ connectionString: database.url, max: 2 });
  // Dropping the database ends its sessions: that must not crash the test process.
  sql.on('error', () => undefined);
  sql.on('connect', (client) => client.on('error', () => undefined));
  const clients: grpc.Client[] = [];
  const api: TestCoordinator['api'] = async (method, path, opts = {}) => {
    const key = opts.key === undefined ? adminKey : opts.key;
    const headers: Record<string, string> = { ...opts.headers };
    if (key) headers.authorization = `Bearer ${key}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${handle.httpUrl}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (e.g. /metrics)
    }
    return { status: res.status, body };
  };
  return {
    handle,
    database,
    adminKey,
    sql,
    api,
    client: () => {
      const c = workerClient(handle.grpcAddress);
      clients.push(c);
      return c;
    },
    close: async () => {
      for (const c of clients) c.close();
      await handle.close();
      await sql.end();
      await database.drop();
    },
  };
}

export function workerClient(address: string): WorkerServiceClient {
  const { WorkerService } = loadWorkerProto().gradpool.v1;
  return new WorkerService(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
}

export const CAPABILITIES: Capabilities = {
  backend: 'wasm',
  deviceName: 'test cpu',
  memoryBytes: 8 * 1024 ** 3,
  gflops: 25.5,
  agentVersion: '0.1.0-test',
  os: 'linux x64',
  cpuCount: 2,
};

/** Register with a 10 s deadline. */
export function register(client: WorkerServiceClient, req: RegisterRequest): Promise<RegisterResponse__Output> {
  return new Promise((resolve, reject) =>
    client.Register({ capabilities: CAPABILITIES, workerName: 'w', ...req }, { deadline: Date.now() + 10_000 }, (err, res) =>
      err ? reject(err) : resolve(res!),
    ),
  );
}

/** The gRPC error of a call expected to fail. */
export async function grpcFailure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

type Body = NonNullable<CoordinatorMessage__Output['body']>;

/** A worker's session stream, driven by the test. */
export class TestSession {
  readonly call: grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output>;
  readonly received: CoordinatorMessage__Output[] = [];
  /** Resolves with the call's final status. */
  readonly status: Promise<grpc.StatusObject>;
  private consumed = 0;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(client: WorkerServiceClient, workerId: string, secret: string) {
    const md = new grpc.Metadata();
    md.set(SESSION_METADATA.workerId, workerId);
    md.set(SESSION_METADATA.secret, secret);
    this.call = client.Session(md);
    this.status = new Promise((resolve) => this.call.on('status', resolve));
    this.call.on('data', (m: CoordinatorMessage__Output) => {
      this.received.push(m);
      this.wake?.();
    });
    this.call.on('error', () => undefined); // the status promise carries it
    void this.status.then(() => {
      this.stopHeartbeats();
      this.wake?.();
    });
  }

  /** The next not-yet-consumed message with this body (earlier ones of other kinds are skipped). */
  async next(body: Body, timeoutMs = 10_000): Promise<CoordinatorMessage__Output> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.status.then(() => (ended = true));
    for (;;) {
      while (this.consumed < this.received.length) {
        const m = this.received[this.consumed++];
        if (m.body === body) return m;
      }
      if (ended) throw new Error(`stream ended before a '${body}' message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no '${body}' message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  heartbeat(status = 'testing'): void {
    this.call.write({ heartbeat: { state: 'WORKER_STATE_IDLE', status, sentAtMs: Date.now() } });
  }

  startHeartbeats(everyMs = 100): void {
    this.heartbeat();
    this.timer = setInterval(() => this.heartbeat(), everyMs);
  }

  stopHeartbeats(): void {
    clearInterval(this.timer);
  }

  drain(reason = 'test'): void {
    this.call.write({ drain: { reason } });
  }

  end(): void {
    this.stopHeartbeats();
    this.call.end();
  }

  cancel(): void {
    this.stopHeartbeats();
    this.call.cancel();
  }
}

/** Polls `probe` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(probe: () => Promise<T> | T, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates a group and a join token through the API. */
export async function groupWithToken(
  tc: TestCoordinator,
  name: string,
  token: { maxUses?: number; expiresInSeconds?: number } = {},
): Promise<{ groupId: string; token: string; tokenId: string }> {
  const g = await tc.api('POST', '/v1/groups', { body: { name } });
  if (g.status !== 201) throw new Error(`create group: ${g.status} ${JSON.stringify(g.body)}`);
  const t = await tc.api('POST', `/v1/groups/${g.body.id}/tokens`, { body: token });
  if (t.status !== 201) throw new Error(`create token: ${t.status} ${JSON.stringify(t.body)}`);
  return { groupId: g.body.id, token: t.body.token, tokenId: t.body.id };
}
