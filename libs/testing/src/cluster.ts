/**
 * A small cluster for end-to-end tests and benchmarks: the real coordinator process, N real
 * worker processes, an admin API client, and helpers to import MNIST, submit a job and wait for
 * it. Reads the coordinator's Postgres directly (rounds, events, metrics) for assertions the
 * REST API does not expose. Build the coordinator and the worker first
 * (`npx tsc -b apps/coordinator apps/worker`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { CoordinatorProcess, type CoordinatorProcessOptions } from './coordinator-process.js';
import { createTestDatabase, type TestDatabase } from './services.js';
import { WorkerProcess, type WorkerProcessOptions } from './worker-process.js';

export class AdminApiError extends Error {
  override name = 'AdminApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** The coordinator's REST API with an admin key. */
export class AdminApi {
  constructor(
    private readonly baseUrl: () => string,
    private readonly key: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl()}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(300_000),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const message = (parsed as { message?: string } | undefined)?.message ?? text;
      throw new AdminApiError(res.status, `${method} ${path} → ${res.status}: ${message}`, parsed);
    }
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
}

/** `GET /v1/jobs/:id` (the fields tests use). */
export interface ClusterJob {
  id: string;
  name: string;
  status: string;
  statusReason: string;
  round: number;
  epoch: number;
  dataEpoch: number;
  samplesProcessed: number;
  roster: { epoch: number; startRound: number; members: { workerId: string; name: string | null; index: number; samplesPerRound: number; share: number; speed: number }[] } | null;
  lastMetrics: Record<string, { round: number; value: number }>;
  totalRounds: number | null;
  credits: { workerId: string; samples: number; computeMs: number; rounds: number }[];
}

/** `GET /v1/datasets/:id` (the fields tests use). */
export interface ClusterDataset {
  id: string;
  name: string;
  splits?: Record<'train' | 'validation' | 'test', { samples: number; shards: { index: number; sampleCount: number; bytes: number; sha256: string }[] }>;
}

/** A row of the `rounds` table. */
export interface CommittedRound {
  round: number;
  epoch: number;
  dataEpoch: number;
  loss: number | null;
  samples: number;
  contributors: string[];
  paramHash: string;
  durationMs: number | null;
  bytesExchanged: number;
  committedAt: Date;
}

/** A row of the `events` table. */
export interface StoredEvent {
  id: number;
  type: string;
  workerId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
}

export interface ClusterOptions {
  /** Worker processes started at once (default 0; add more with `startWorker`). */
  workers?: number;
  /** A database to use; default a fresh one from `createTestDatabase` (dropped on dispose). */
  databaseUrl?: string;
  /** Passed to the coordinator (heartbeats, lease, log level, env). */
  coordinator?: Omit<CoordinatorProcessOptions, 'databaseUrl'>;
  /** Defaults for every worker (backend wasm unless set). */
  worker?: Partial<Omit<WorkerProcessOptions, 'coordinator' | 'token'>>;
  /** Name of the group the workers join (default `e2e`). */
  groupName?: string;
}

const TERMINAL = ['completed', 'failed', 'cancelled'];

export class Cluster implements AsyncDisposable {
  readonly workers: WorkerProcess[] = [];
  readonly api: AdminApi;
  groupId = '';
  token = '';
  private pool: pg.Pool | undefined;
  private workerSeq = 0;

  private constructor(
    readonly coordinator: CoordinatorProcess,
    readonly databaseUrl: string,
    private readonly db: TestDatabase | undefined,
    private readonly opts: ClusterOptions,
  ) {
    this.api = new AdminApi(() => coordinator.httpUrl, coordinator.adminKey);
  }

  /** Starts the coordinator, makes a group with a join token, and starts `workers` workers. */
  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const db = opts.databaseUrl ? undefined : await createTestDatabase('gp_e2e');
    const databaseUrl = opts.databaseUrl ?? db!.url;
    let coordinator: CoordinatorProcess;
    try {
      coordinator = await CoordinatorProcess.start({ readyTimeoutMs: 90_000, ...opts.coordinator, databaseUrl });
    } catch (err) {
      await db?.drop();
      throw err;
    }
    const c = new Cluster(coordinator, databaseUrl, db, opts);
    try {
      c.groupId = (await c.api.post<{ id: string }>('/v1/groups', { name: opts.groupName ?? 'e2e' })).id;
      c.token = (await c.api.post<{ token: string }>(`/v1/groups/${c.groupId}/tokens`, {})).token;
      for (let i = 0; i < (opts.workers ?? 0); i++) c.startWorker();
    } catch (err) {
      await c[Symbol.asyncDispose]();
      throw err;
    }
    return c;
  }

  /** Starts one more worker process in the cluster's group (named `w<n>` unless given). */
  startWorker(opts: Partial<Omit<WorkerProcessOptions, 'coordinator' | 'token'>> = {}): WorkerProcess {
    const name = opts.name ?? `w${++this.workerSeq}`;
    const w = WorkerProcess.start({ backend: 'wasm', ...this.opts.worker, ...opts, name, coordinator: this.coordinator.grpcAddress, token: this.token });
    this.workers.push(w);
    return w;
  }

  /** The worker's id, once its session is accepted (from its own log). */
  async workerId(w: WorkerProcess, timeoutMs = 90_000): Promise<string> {
    const rec = await w.waitForLog('session accepted', {}, timeoutMs);
    return rec.workerId as string;
  }

  /** Waits until at least `n` workers of the group are online and connected (and idle, with `idle`). */
  async waitForWorkers(n: number, opts: { idle?: boolean; timeoutMs?: number } = {}): Promise<{ id: string; name: string; state: string }[]> {
    return this.until(
      `${n} workers online${opts.idle ? ' and idle' : ''}`,
      async () => {
        const ws = await this.api.get<{ id: string; name: string; status: string; state: string; connected: boolean }[]>(`/v1/workers?group=${this.groupId}&status=online`);
        const on = ws.filter((w) => w.connected && (!opts.idle || w.state === 'idle'));
        return on.length >= n ? on : undefined;
      },
      opts.timeoutMs ?? 90_000,
    );
  }

  /** Imports MNIST (`POST /v1/datasets {builtin: 'mnist'}`; answers when it is ready). */
  async importMnist(opts: { name?: string; validationFraction?: number; seed?: number } = {}): Promise<ClusterDataset> {
    const ds = await this.api.post<ClusterDataset>('/v1/datasets', {
      builtin: 'mnist',
      name: opts.name ?? `mnist-${Date.now().toString(36)}`,
      normalise: 'scale',
      validationFraction: opts.validationFraction ?? 0.1,
      seed: opts.seed ?? 1,
    });
    return this.api.get<ClusterDataset>(`/v1/datasets/${ds.id}`);
  }

  /** Submits a job in the cluster's group (`groupId` may be overridden). */
  async submitJob(spec: Record<string, unknown>): Promise<ClusterJob> {
    return this.api.post<ClusterJob>('/v1/jobs', { groupId: this.groupId, ...spec });
  }

  job(id: string): Promise<ClusterJob> {
    return this.api.get<ClusterJob>(`/v1/jobs/${id}`);
  }

  /** Polls the job until `check` accepts it; throws after `timeoutMs` with the last detail. */
  async waitForJob(id: string, check: (j: ClusterJob) => boolean, what: string, timeoutMs = 180_000): Promise<ClusterJob> {
    let last: ClusterJob | undefined;
    return this.until(
      what,
      async () => {
        last = await this.job(id);
        return check(last) ? last : undefined;
      },
      timeoutMs,
      () => `; last: ${JSON.stringify(last && { status: last.status, statusReason: last.statusReason, round: last.round, epoch: last.epoch, dataEpoch: last.dataEpoch, samples: last.samplesProcessed })}`,
    );
  }

  /** Waits for a terminal status (completed, failed, cancelled). */
  waitForEnd(id: string, timeoutMs = 300_000): Promise<ClusterJob> {
    return this.waitForJob(id, (j) => TERMINAL.includes(j.status), 'the job to end', timeoutMs);
  }

  /** Waits until the job committed round `round` (jobs.round ≥ round). */
  waitForRound(id: string, round: number, timeoutMs = 180_000): Promise<ClusterJob> {
    return this.waitForJob(id, (j) => j.round >= round || TERMINAL.includes(j.status), `round ${round} committed`, timeoutMs);
  }

  /** `GET /v1/jobs/:id/metrics`. */
  metrics(id: string): Promise<({ round: number } & Record<string, number>)[]> {
    return this.api.get(`/v1/jobs/${id}/metrics`);
  }

  /** A query against the coordinator's database. */
  async sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
    if (!this.pool) {
      this.pool = new pg.Pool({ connectionString: this.databaseUrl, max: 2 });
      // An idle connection closed by the server (the database dropped at the end) is not an error here.
      this.pool.on('error', () => undefined);
      this.pool.on('connect', (client) => client.on('error', () => undefined));
    }
    return (await this.pool.query<R>(text, params)).rows;
  }

  /** The committed rounds of a job, in order. */
  async rounds(jobId: string): Promise<CommittedRound[]> {
    const rows = await this.sql<Record<string, unknown>>(
      `select round, epoch, data_epoch, loss, samples, contributors, param_hash, duration_ms, bytes_exchanged, created_at as committed_at from rounds where job_id = $1 order by round`,
      [jobId],
    );
    return rows.map((r) => ({
      round: Number(r.round),
      epoch: Number(r.epoch),
      dataEpoch: Number(r.data_epoch),
      loss: r.loss === null ? null : Number(r.loss),
      samples: Number(r.samples),
      contributors: r.contributors as string[],
      paramHash: String(r.param_hash),
      durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
      bytesExchanged: Number(r.bytes_exchanged),
      committedAt: r.committed_at as Date,
    }));
  }

  /** The stored events of a job (optionally of some types), oldest first. */
  async events(jobId: string, types?: string[]): Promise<StoredEvent[]> {
    const rows = await this.sql<Record<string, unknown>>(
      `select id, type, worker_id, data, created_at from events where job_id = $1 ${types ? 'and type = any($2)' : ''} order by id`,
      types ? [jobId, types] : [jobId],
    );
    return rows.map((r) => ({ id: Number(r.id), type: String(r.type), workerId: (r.worker_id as string | null) ?? null, data: r.data as Record<string, unknown>, createdAt: r.created_at as Date }));
  }

  /** Checkpoint rows of a job: round → paramHash. */
  async checkpoints(jobId: string): Promise<{ round: number; paramHash: string }[]> {
    const rows = await this.sql<{ round: string; param_hash: string }>(`select round, param_hash from checkpoints where job_id = $1 order by round`, [jobId]);
    return rows.map((r) => ({ round: Number(r.round), paramHash: r.param_hash }));
  }

  /** Writes the coordinator's and every worker's output to `dir` (for diagnosing a failure). */
  dumpLogs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'coordinator.log'), this.coordinator.output());
    this.workers.forEach((w, i) => writeFileSync(join(dir, `worker-${i + 1}.log`), w.output()));
  }

  /** The last `n` lines of each process's output that look like trouble (for assertion messages). */
  trouble(n = 15): string {
    const pick = (text: string) =>
      text
        .split('\n')
        .filter((l) => /"level":(40|50|60)|error|fault/i.test(l))
        .slice(-n)
        .join('\n');
    return [`coordinator:\n${pick(this.coordinator.output())}`, ...this.workers.map((w, i) => `worker ${i + 1}:\n${pick(w.output())}`)].join('\n');
  }

  /** Polls every 250 ms until `check` returns a value. */
  async until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, detail: () => string = () => ''): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check().catch((err: unknown) => {
        // The coordinator may be restarting: keep polling until the deadline.
        if (Date.now() > deadline) throw err;
        return undefined;
      });
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill().catch(() => undefined)));
    await this.coordinator.stop().catch(() => undefined);
    await this.pool?.end().catch(() => undefined);
    await this.db?.drop().catch(() => undefined);
  }
}
