/**
 * Services for the demo and dev scripts (not for tests, which use the real servers): uses the
 * Postgres and NATS named by DATABASE_URL / NATS_URL or found on localhost; when Postgres does
 * not answer, serves an embedded one (PGlite over its socket server) from this process; when
 * NATS does not answer, starts `nats-server -js` from PATH, or says how to get one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import pg from 'pg';

export interface DevServices {
  databaseUrl: string;
  natsUrl: string;
  /** Settings the coordinator needs for these services (e.g. one connection for PGlite). */
  coordinatorEnv: Record<string, string>;
  /** What was found or started, for the user. */
  notes: string[];
  close(): Promise<void>;
}

export class ServiceUnavailableError extends Error {
  override name = 'ServiceUnavailableError';
}

/** True when something accepts TCP connections on host:port within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates `database` on the server of `url` if it does not exist; returns its URL. */
async function ensureDatabase(url: string, database: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`create database "${database}"`);
  } finally {
    await client.end();
  }
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function whichOnPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = join(dir, bin);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new ServiceUnavailableError(`${what} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface EmbeddedPostgres {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves a fresh PGlite database over the Postgres wire protocol on a free localhost port.
 * PGlite is a single Postgres session: clients must use one connection (pool max 1), or
 * their transactions would interleave.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const dataDir = mkdtempSync(join(tmpdir(), 'gradpool-pglite-'));
  const db = await PGlite.create(dataDir);
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' });
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    close: async () => {
      await server.stop();
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface DevServicesOptions {
  /** DATABASE_URL, if the user set one: used as is, never replaced by an embedded server. */
  databaseUrl?: string;
  natsUrl?: string;
  /** Database the demo uses on a found server (created if missing). */
  database?: string;
  log?: (line: string) => void;
}

export async function ensureDevServices(opts: DevServicesOptions = {}): Promise<DevServices> {
  const log = opts.log ?? (() => undefined);
  const closers: (() => Promise<void>)[] = [];
  const notes: string[] = [];
  const coordinatorEnv: Record<string, string> = {};
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    // Postgres
    let databaseUrl: string;
    if (opts.databaseUrl) {
      if (!(await postgresAnswers(opts.databaseUrl))) {
        throw new ServiceUnavailableError(`DATABASE_URL ${redact(opts.databaseUrl)} does not answer`);
      }
      databaseUrl = opts.databaseUrl;
      notes.push(`Postgres: ${redact(databaseUrl)} (DATABASE_URL)`);
    } else if (await postgresAnswers('postgres://postgres@127.0.0.1:5432/postgres')) {
      databaseUrl = await ensureDatabase('postgres://postgres@127.0.0.1:5432/postgres', opts.database ?? 'gradpool_demo');
      notes.push(`Postgres: ${redact(databaseUrl)} (found on localhost)`);
    } else {
      const embedded = await startEmbeddedPostgres();
      closers.push(embedded.close);
      databaseUrl = embedded.url;
      // PGlite is one Postgres session: one connection keeps transactions apart.
      coordinatorEnv.GRADPOOL_DB_POOL_MAX = '1';
      notes.push(`Postgres: none on 127.0.0.1:5432, so an embedded PGlite serves ${databaseUrl}`);
    }
    log(notes[notes.length - 1]);

    // NATS
    let natsUrl = opts.natsUrl ?? 'nats://127.0.0.1:4222';
    const u = new URL(natsUrl.includes('://') ? natsUrl : `nats://${natsUrl}`);
    if (await tcpAnswers(u.hostname, Number(u.port || 4222))) {
      notes.push(`NATS: ${natsUrl}${opts.natsUrl ? ' (NATS_URL)' : ' (found on localhost)'}`);
    } else if (opts.natsUrl) {
      throw new ServiceUnavailableError(`NATS_URL ${natsUrl} does not answer`);
    } else {
      const bin = whichOnPath('nats-server');
      if (!bin) {
        throw new ServiceUnavailableError(
          'NATS does not answer on 127.0.0.1:4222 and no nats-server is on PATH. Install it ' +
            '(Debian/Ubuntu: apt-get install nats-server) or start the services with ' +
            '`docker compose -f deploy/compose.yaml up -d nats postgres`, or set NATS_URL.',
        );
      }
      const port = await freePort();
      const storeDir = mkdtempSync(join(tmpdir(), 'gradpool-nats-'));
      const child: ChildProcess = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: 'ignore' });
      closers.push(async () => {
        child.kill('SIGTERM');
        rmSync(storeDir, { recursive: true, force: true });
      });
      natsUrl = `nats://127.0.0.1:${port}`;
      await until(() => tcpAnswers('127.0.0.1', port), 15_000, 'nats-server');
      notes.push(`NATS: started ${bin} with JetStream on ${natsUrl}`);
    }
    log(notes[notes.length - 1]);
    return { databaseUrl, natsUrl, coordinatorEnv, notes, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
