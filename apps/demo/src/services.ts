import { ensureDevServices, type DevServices } from '@gradpool/testing';

/** The demo's services: DATABASE_URL / NATS_URL when set, else found or started locally. */
export function ensureServices(log: (line: string) => void): Promise<DevServices> {
  return ensureDevServices({
    databaseUrl: process.env.DATABASE_URL || undefined,
    natsUrl: process.env.NATS_URL || undefined,
    pathEnv: process.env.PATH ?? '',
    database: 'gradpool_demo',
    log,
  });
}
