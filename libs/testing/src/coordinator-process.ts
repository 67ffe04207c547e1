/**
 * The built coordinator as a real child process (`node apps/coordinator/dist/main.js`; build it
 * first: `npx tsc -b apps/coordinator`), against a test database. It prints
 * `{"event":"ready","http":…,"grpc":…}` on stdout once it serves; `restart()` brings it back on
 * the same ports and database (e.g. after `kill('SIGKILL')`), so that workers can reconnect.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TEST_NATS_URL } from './services.js';

/** The built entry point of apps/coordinator. */
export const COORDINATOR_MAIN = fileURLToPath(new URL('../../../apps/coordinator/dist/main.js', import.meta.url));

export interface CoordinatorProcessOptions {
  /** A migrated (or empty) database, e.g. `(await createTestDatabase()).url`. */
  databaseUrl: string;
  natsUrl?: string;
  /**
   * Admin API key; default a random one (read it back from `adminKey`). `null`: start without
   * GRADPOOL_ADMIN_KEY (also when the test's own environment has one), as a first start where
   * the coordinator generates a key and prints it once; `adminKey` is then ''.
   */
  adminKey?: string | null;
  /** 0 (default): any free port at first start; restarts reuse the bound ports. */
  httpPort?: number;
  grpcPort?: number;
  heartbeatIntervalMs?: number;
  heartbeatMisses?: number;
  leaseMs?: number;
  /** Default `warn` (set GRADPOOL_TEST_LOG_LEVEL to see more). */
  logLevel?: string;
  /** Extra environment, merged last. */
  env?: Record<string, string>;
  /** How long to wait for the ready line; default 30 s. */
  readyTimeoutMs?: number;
}

export interface CoordinatorExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class CoordinatorProcess implements AsyncDisposable {
  /** Every output line of every run (stdout and stderr), for diagnosis. */
  readonly lines: string[] = [];
  readonly adminKey: string;
  httpPort = 0;
  grpcPort = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<CoordinatorExit> | undefined;

  private constructor(private readonly opts: CoordinatorProcessOptions) {
    this.adminKey = opts.adminKey === null ? '' : (opts.adminKey ?? `test-admin-${randomBytes(12).toString('hex')}`);
    this.httpPort = opts.httpPort ?? 0;
    this.grpcPort = opts.grpcPort ?? 0;
  }

  /** Spawns the coordinator and resolves once it printed its ready line. */
  static async start(opts: CoordinatorProcessOptions): Promise<CoordinatorProcess> {
    if (!existsSync(COORDINATOR_MAIN)) {
      throw new Error(`${COORDINATOR_MAIN} is missing: build the coordinator first (npx tsc -b apps/coordinator)`);
    }
    const p = new CoordinatorProcess(opts);
    await p.spawn();
    return p;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }
  /** `127.0.0.1:<grpc port>`, for workers' --coordinator. */
  get grpcAddress(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` (default SIGKILL) and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 15_000): Promise<CoordinatorExit> {
    if (!this.child || !this.exited) throw new Error('coordinator not started');
    if (this.running) this.child.kill(signal);
    return withDeadline(this.exited, timeoutMs, `coordinator exit after ${signal}`);
  }

  /** Clean stop (SIGTERM), then SIGKILL if it does not exit within the deadline. */
  async stop(timeoutMs = 10_000): Promise<CoordinatorExit | undefined> {
    if (!this.child || !this.running) return undefined;
    try {
      return await this.kill('SIGTERM', timeoutMs);
    } catch {
      return this.kill('SIGKILL');
    }
  }

  /** Starts it again on the same ports and database (after kill or stop). */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.spawn();
  }

  /** The output so far, for assertion messages. */
  output(): string {
    return this.lines.join('\n');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private async spawn(): Promise<void> {
    const o = this.opts;
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      DATABASE_URL: o.databaseUrl,
      NATS_URL: o.natsUrl ?? TEST_NATS_URL,
      GRADPOOL_HTTP_HOST: '127.0.0.1',
      GRADPOOL_HTTP_PORT: String(this.httpPort),
      GRADPOOL_GRPC_HOST: '127.0.0.1',
      GRADPOOL_GRPC_PORT: String(this.grpcPort),
      GRADPOOL_ADMIN_KEY: this.adminKey,
      LOG_LEVEL: o.logLevel ?? process.env.GRADPOOL_TEST_LOG_LEVEL ?? 'warn',
    };
    if (o.adminKey === null) delete env.GRADPOOL_ADMIN_KEY;
    if (o.heartbeatIntervalMs !== undefined) env.GRADPOOL_HEARTBEAT_INTERVAL_MS = String(o.heartbeatIntervalMs);
    if (o.heartbeatMisses !== undefined) env.GRADPOOL_HEARTBEAT_MISSES = String(o.heartbeatMisses);
    if (o.leaseMs !== undefined) env.GRADPOOL_LEASE_MS = String(o.leaseMs);
    Object.assign(env, o.env);

    const child = spawn(process.execPath, [COORDINATOR_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const ready = new Promise<{ http: number; grpc: number }>((resolve, reject) => {
      for (const stream of [child.stdout!, child.stderr!]) {
        createInterface({ input: stream }).on('line', (line) => {
          this.lines.push(line);
          if (!line.startsWith('{"event":"ready"')) return;
          try {
            const ev = JSON.parse(line) as { http: number; grpc: number };
            resolve(ev);
          } catch (err) {
            reject(err as Error);
          }
        });
      }
      void this.exited!.then((e) =>
        reject(new Error(`coordinator exited (code ${e.code}, signal ${e.signal}) before it was ready:\n${this.lines.slice(-30).join('\n')}`)),
      );
    });
    const { http, grpc } = await withDeadline(ready, this.opts.readyTimeoutMs ?? 30_000, 'the coordinator ready line').catch(async (err: unknown) => {
      if (this.running) child.kill('SIGKILL');
      throw err;
    });
    this.httpPort = http;
    this.grpcPort = grpc;
  }
}

/** Convenience: `CoordinatorProcess.start(opts)`. */
export function startCoordinatorProcess(opts: CoordinatorProcessOptions): Promise<CoordinatorProcess> {
  return CoordinatorProcess.start(opts);
}

async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
