/**
 * Real services for tests: Postgres and nats-server, never mocks (STYLE.md).
 * Each test file gets its own database, cloned from a migrated template.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connect } from 'nats';

export const TEST_DATABASE_URL = process.env.GRADPOOL_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_NATS_URL = process.env.GRADPOOL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const TEMPLATE_PREFIX = 'gradpool_test_template';
/**
 * Database that global setup migrates once; per-file databases are cloned from it. One per test
 * run (named with the run's process id, handed to the test workers through the environment), so
 * two runs on one Postgres do not drop each other's template.
 */
export const TEMPLATE_DATABASE = process.env.GRADPOOL_TEST_TEMPLATE ?? `${TEMPLATE_PREFIX}_${process.pid}`;

/** `url` with its database name replaced. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Creates a fresh, migrated database for one test file. */
export async function createTestDatabase(prefix = 'gp_t'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin(async (c) => {
    // CREATE DATABASE … TEMPLATE fails while another session is connected to the template;
    // global setup closes its connections, and creation is retried briefly for safety.
    for (let attempt = 0; ; attempt++) {
      try {
        await c.query(`create database "${name}" template "${TEMPLATE_DATABASE}"`);
        return;
      } catch (err) {
        if (attempt >= 20 || !String((err as Error).message).includes('being accessed')) throw err;
        await new Promise((r) => setTimeout(r, 100 + attempt * 50));
      }
    }
  });
  const url = withDatabase(TEST_DATABASE_URL, name);
  return {
    name,
    url,
    drop: async () => {
      await removeDatasetBuckets(url);
      await admin(async (c) => void (await c.query(`drop database if exists "${name}" with (force)`)));
    },
  };
}

/**
 * Deletes, on the test NATS server, the shard buckets of the datasets a test database holds
 * (each imported dataset has a bucket of its own): without this, every test run that imports
 * MNIST would leave 200 MB behind. Best effort: a bucket on another (private) server, or one
 * already gone, is skipped.
 */
async function removeDatasetBuckets(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  let buckets: string[] = [];
  try {
    await client.connect();
    buckets = (await client.query<{ b: string }>(`select shard_bucket as b from datasets where shard_bucket like 'gp_ds_%'`)).rows.map((r) => r.b);
  } catch {
    return;
  } finally {
    await client.end().catch(() => undefined);
  }
  if (buckets.length === 0) return;
  const nc = await connect({ servers: TEST_NATS_URL, timeout: 2000 }).catch(() => null);
  if (!nc) return;
  try {
    const jsm = await nc.jetstreamManager();
    for (const b of buckets) for (const stream of [`OBJ_${b}`, `OBJ_${b}_eval`]) await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates and migrates this run's template database (and drops templates left by runs whose
 * process is gone); returns the teardown that drops it. Called by global setup, which hands the
 * name to the test workers in GRADPOOL_TEST_TEMPLATE.
 */
export async function prepareTemplateDatabase(migrate: (url: string) => Promise<void>): Promise<() => Promise<void>> {
  await admin(async (c) => {
    const { rows } = await c.query<{ datname: string }>('select datname from pg_database where datname like $1', [`${TEMPLATE_PREFIX}%`]);
    for (const { datname } of rows) {
      const pid = Number(/_(\d+)$/.exec(datname)?.[1]);
      if (datname === TEMPLATE_DATABASE || !Number.isInteger(pid) || !processAlive(pid)) await c.query(`drop database if exists "${datname}" with (force)`);
    }
    await c.query(`create database "${TEMPLATE_DATABASE}"`);
  });
  await migrate(withDatabase(TEST_DATABASE_URL, TEMPLATE_DATABASE));
  return () => admin(async (c) => void (await c.query(`drop database if exists "${TEMPLATE_DATABASE}" with (force)`)));
}
