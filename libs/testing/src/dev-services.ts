/**
 * Services for `npm run demo` and local development (not for tests, which use real servers): Postgres and NATS on localhost when they
 * answer, otherwise an embedded Postgres (PGlite over its socket server) and a `nats-server`
 * found on PATH, started with JetStream. Entry points pass what they read from the environment.
 */
import { createNatsOperator, natsServerConfig, type NatsOperatorSetup } from '@gradpool/nats-auth';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import pg from 'pg';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export interface DevServicesOptions {
  /** Use this database (DATABASE_URL) instead of probing; nothing is started. */
  databaseUrl?: string;
  /** Use this NATS (NATS_URL) instead of probing; nothing is started. */
  natsUrl?: string;
  /** Where embedded services keep their data; default `.gradpool/` in the working directory. */
  dataDir?: string;
  /** The PATH to search for nats-server (the entry point passes process.env.PATH). */
  pathEnv?: string;
  /** Directories searched for nats-server after `pathEnv`; default DEFAULT_EXTRA_BIN_DIRS. */
  extraBinDirs?: readonly string[];
  /** The port of 127.0.0.1 probed for a running NATS; default 4222. */
  natsPort?: number;
  /** Start a private nats-server (per-worker users) even when one answers on `natsPort`. */
  startNats?: boolean;
  /** On a Postgres found on localhost, use (and create if missing) this database instead of `postgres`. */
  database?: string;
  /** Progress messages for the person running the demo. */
  log?: (message: string) => void;
}

export interface DevServices {
  databaseUrl: string;
  natsUrl: string;
  /** Connections the coordinator may open: 1 for embedded PGlite, which runs one session at a time. */
  databasePoolMax: number;
  /** What was started, for the demo's summary. */
  started: ('pglite' | 'nats-server')[];
  /** Environment the coordinator needs for these services (a started NATS: NATS_CREDS and the account seed). */
  coordinatorEnv: Record<string, string>;
  close(): Promise<void>;
}

/** Neither a NATS server nor a nats-server binary: the message says how to get one. */
export class DevServicesError extends Error {
  override name = 'DevServicesError';
}

/** Well-known places for nats-server besides PATH (Debian puts it in /usr/sbin). */
export const DEFAULT_EXTRA_BIN_DIRS: readonly string[] = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin', '/opt/homebrew/bin'];

export async function ensureDevServices(opts: DevServicesOptions = {}): Promise<DevServices> {
  const log = opts.log ?? (() => undefined);
  const dataDir = resolve(opts.dataDir ?? '.gradpool');
  const closers: (() => Promise<void>)[] = [];
  const started: DevServices['started'] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };

  try {
    let databaseUrl = opts.databaseUrl;
    let databasePoolMax = 10;
    if (!databaseUrl) {
      if (await tcpAnswers('127.0.0.1', 5432)) {
        databaseUrl = opts.database ? await ensureDatabase(DEFAULT_DATABASE_URL, opts.database) : DEFAULT_DATABASE_URL;
        log(`Postgres: using the one on 127.0.0.1:5432 (${databaseUrl})`);
      } else {
        const pg = await startEmbeddedPostgres(join(dataDir, 'pglite'));
        closers.push(pg.close);
        started.push('pglite');
        databaseUrl = pg.url;
        databasePoolMax = 1;
        log(`Postgres: none on 127.0.0.1:5432, started an embedded one (PGlite) at ${pg.url}, data in ${join(dataDir, 'pglite')}`);
      }
    }

    let natsUrl = opts.natsUrl;
    let coordinatorEnv: Record<string, string> = {};
    if (!natsUrl) {
      const natsPort = opts.natsPort ?? 4222;
      if (!opts.startNats && (await tcpAnswers('127.0.0.1', natsPort))) {
        natsUrl = natsPort === 4222 ? DEFAULT_NATS_URL : `nats://127.0.0.1:${natsPort}`;
        log(`NATS: using the one on 127.0.0.1:${natsPort}; workers share its identity (per-worker NATS users: docs/nats-auth.md; the demo: --own-nats)`);
      } else {
        const bin = findExecutable('nats-server', opts.pathEnv ?? '', opts.extraBinDirs);
        if (!bin && opts.startNats) throw new DevServicesError('no nats-server binary was found to start (install nats-server, e.g. sudo apt-get install nats-server)');
        if (!bin) {
          throw new DevServicesError(
            `No NATS server answers on 127.0.0.1:${natsPort} and no nats-server binary was found.\n` +
              '  Install one:   sudo apt-get install nats-server   (Debian/Ubuntu)\n' +
              '                 brew install nats-server            (macOS)\n' +
              '  or run the stack with containers:  docker compose -f deploy/compose.yaml up -d nats\n' +
              '  or point NATS_URL at a running server.',
          );
        }
        // Started here, it is secured as a deployment should be: every worker gets a NATS user
        // limited to its jobs (docs/nats-auth.md); the coordinator gets the account seed.
        const nats = await startSecuredNatsServer(bin, join(dataDir, 'nats-secured'));
        closers.push(nats.close);
        started.push('nats-server');
        natsUrl = nats.url;
        coordinatorEnv = nats.coordinatorEnv;
        log(`NATS: ${opts.startNats ? 'asked for our own,' : `none on 127.0.0.1:${natsPort},`} started ${bin} with JetStream at ${nats.url}, per-worker users (operator mode)`);
      }
    }
    return { databaseUrl, natsUrl, databasePoolMax, started, coordinatorEnv, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Creates `database` on the server of `url` if it does not exist; returns its URL. */
async function ensureDatabase(url: string, database: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) throw new DevServicesError(`database name ${JSON.stringify(database)} is not a plain identifier`);
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

/** Whether something accepts TCP connections at host:port within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A free TCP port on 127.0.0.1 (for a child process that needs a port number up front). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The first executable `name` in the directories of `pathEnv`, then in `extraDirs`. */
export function findExecutable(name: string, pathEnv: string, extraDirs: readonly string[] = DEFAULT_EXTRA_BIN_DIRS): string | undefined {
  for (const dir of [...pathEnv.split(delimiter).filter(Boolean), ...extraDirs]) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * PGlite (Postgres compiled to WebAssembly) in `dir` (in memory when undefined), served over the
 * Postgres wire protocol on a free port of 127.0.0.1. It runs one session: connections are queued, so the coordinator's pool must hold a single connection.
 */
export async function startEmbeddedPostgres(dir: string | undefined): Promise<{ url: string; close: () => Promise<void> }> {
  if (dir) mkdirSync(dir, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(dir);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}

/** A nats-server started by `startNatsServer`. */
export interface StartedNatsServer {
  url: string;
  /** The server's process. */
  pid: number;
  /** Stops the process (SIGSTOP) for `ms`, so that requests sent meanwhile time out; resolves once it runs again. */
  freeze: (ms: number) => Promise<void>;
  /**
   * Stops the process until `until` settles (or `maxMs` passes): for tests that need something to
   * have happened while it was stopped, whatever the machine's load (a fixed `freeze` can end
   * before a loaded test process has even sent its request).
   */
  freezeUntil: (until: Promise<unknown>, maxMs?: number) => Promise<void>;
  close: () => Promise<void>;
}

/**
 * SIGSTOP, and returns once every thread of the process is stopped. The signal takes effect
 * asynchronously: on a loaded machine the server answered a request sent right after `kill`
 * (a test that froze it saw its request succeed). Where /proc is missing, returns at once.
 */
function stop(child: ChildProcess): void {
  child.kill('SIGSTOP');
  const tasks = `/proc/${child.pid}/task`;
  if (!existsSync(tasks)) return;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const deadline = Date.now() + 2000; Date.now() < deadline; Atomics.wait(pause, 0, 0, 1)) {
    try {
      const states = readdirSync(tasks).map((t) => /^State:\s+(\S)/m.exec(readFileSync(`${tasks}/${t}/status`, 'utf8'))?.[1]);
      if (states.every((st) => st === 'T' || st === 't')) return;
    } catch {
      // A thread ended while we looked: look again.
    }
  }
}

/** Starts `nats-server -js` (with `configFile` if given) on a free port of 127.0.0.1; resolves once it logs that it is ready. */
export async function startNatsServer(bin: string, storeDir: string, configFile?: string, atPort?: number): Promise<StartedNatsServer> {
  mkdirSync(storeDir, { recursive: true });
  const port = atPort ?? (await freePort());
  // With a configuration file (operator mode, secured-nats.ts), the flags still set address, port and storage.
  const args = [...(configFile ? ['-c', configFile] : []), '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let stderr = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DevServicesError(`nats-server was not ready within 15 s:\n${stderr}`)), 15_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
        if (stderr.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new DevServicesError(`nats-server exited (code ${code}):\n${stderr}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid!,
    freeze: (ms) => {
      stop(child);
      return new Promise((resolve) =>
        setTimeout(() => {
          child.kill('SIGCONT');
          resolve();
        }, ms),
      );
    },
    freezeUntil: (until, maxMs = 15_000) => {
      stop(child);
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([until.then(() => undefined, () => undefined), new Promise<void>((r) => (timer = setTimeout(r, maxMs)))]).then(() => {
        clearTimeout(timer);
        child.kill('SIGCONT');
      });
    },
    close: async () => {
      // A frozen server (SIGSTOP) would not act on SIGTERM.
      if (child.exitCode === null) child.kill('SIGCONT');
      if (child.exitCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * A private nats-server in operator mode (decentralised JWT auth, libs/nats-auth): the demo's and
 * dev script's NATS when they start one, and the tests of per-worker NATS users. The coordinator
 * gets its credentials file and the account seed it signs workers' users with (`coordinatorEnv`).
 */
export interface SecuredNats {
  url: string;
  setup: NatsOperatorSetup;
  /** The coordinator's credentials file (NATS_CREDS). */
  credsFile: string;
  /** Environment for a coordinator using this server with per-worker users (and their revocation). */
  coordinatorEnv: Record<string, string>;
  /**
   * Stops the server and starts it again on the same port and storage; it keeps the account
   * updates pushed to it, unless `forgetAccounts` (its resolver's directory is removed first: a
   * server that lost its disk).
   */
  restart(opts?: { forgetAccounts?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts `bin` (nats-server) in operator mode with its state under `dir`: the operator setup is
 * made once and kept in `dir/setup.json` (so a restart finds its JetStream data under the same
 * account), the server's configuration and the coordinator's credentials are written beside it,
 * and the server keeps the accounts (with the revocations pushed to it) in `dir/jwt`.
 */
export async function startSecuredNatsServer(bin: string, dir: string): Promise<SecuredNats> {
  mkdirSync(dir, { recursive: true });
  const setupFile = join(dir, 'setup.json');
  let setup: NatsOperatorSetup;
  const kept = existsSync(setupFile) ? (JSON.parse(readFileSync(setupFile, 'utf8')) as Partial<NatsOperatorSetup>) : null;
  // A setup from before revocations (no operator seed) is replaced: its JetStream data goes with
  // the old account (the demo imports what it misses again).
  if (kept?.operatorSeed && kept.systemCreds) {
    setup = kept as NatsOperatorSetup;
  } else {
    setup = await createNatsOperator();
    writeFileSync(setupFile, JSON.stringify(setup), { mode: 0o600 });
  }
  const storeDir = join(dir, 'jetstream');
  const confFile = join(dir, 'nats-server.conf');
  writeFileSync(confFile, natsServerConfig(setup, { jwtDir: join(dir, 'jwt') }));
  const credsFile = join(dir, 'coordinator.creds');
  writeFileSync(credsFile, setup.coordinatorCreds, { mode: 0o600 });
  const systemCredsFile = join(dir, 'system.creds');
  writeFileSync(systemCredsFile, setup.systemCreds, { mode: 0o600 });
  let server = await startNatsServer(bin, storeDir, confFile);
  const port = Number(new URL(server.url).port);
  return {
    url: server.url,
    setup,
    credsFile,
    coordinatorEnv: {
      NATS_URL: server.url,
      NATS_CREDS: credsFile,
      GRADPOOL_NATS_ACCOUNT_SEED: setup.account.seed,
      GRADPOOL_NATS_OPERATOR_SEED: setup.operatorSeed,
      GRADPOOL_NATS_SYSTEM_CREDS: systemCredsFile,
    },
    restart: async (opts = {}) => {
      await server.close();
      if (opts.forgetAccounts) rmSync(join(dir, 'jwt'), { recursive: true, force: true });
      server = await startNatsServer(bin, storeDir, confFile, port);
    },
    close: () => server.close(),
  };
}
