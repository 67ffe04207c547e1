import { ensureDevServices, type DevServices } from '@gradpool/testing';

/**
 * The services of `npm run demo` and `npm run dev`: DATABASE_URL / NATS_URL when set, else found
 * or started locally; on a Postgres found on localhost, `database` (created when missing).
 */
export function ensureServices(log: (line: string) => void, database = 'gradpool_demo', opts: { ownNats?: boolean } = {}): Promise<DevServices> {
  return ensureDevServices({
    databaseUrl: process.env.DATABASE_URL || undefined,
    natsUrl: process.env.NATS_URL || undefined,
    startNats: opts.ownNats,
    pathEnv: process.env.PATH ?? '',
    database,
    log,
  });
}
