#!/usr/bin/env node
/**
 * The coordinator process. The only reader of process.env: readEnv() → toConfig() → start.
 * Prints one machine-readable line on stdout once it serves:
 *   {"event":"ready","http":8080,"grpc":50051,"pid":1234}
 */
import { startCoordinator } from './app.js';
import { ConfigError, ENV_VARS, toConfig, type Env } from './config.js';

export function readEnv(): Env {
  return Object.fromEntries(ENV_VARS.map((k) => [k, process.env[k]]));
}

async function main(): Promise<void> {
  let config;
  try {
    config = toConfig(readEnv());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`gradpool-coordinator: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }

  const env = readEnv();
  let handle;
  try {
    handle = await startCoordinator(config);
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    const hints: string[] = [];
    if (!env.DATABASE_URL && msg.includes('DATABASE_URL')) {
      hints.push('DATABASE_URL is unset and no Postgres answers on 127.0.0.1:5432: set DATABASE_URL, or run `npm run demo`, which starts an embedded Postgres.');
    }
    if (!env.NATS_URL && msg.includes('NATS_URL')) {
      hints.push('NATS_URL is unset and no NATS answers on 127.0.0.1:4222: set NATS_URL, install nats-server (Debian/Ubuntu: apt-get install nats-server) and run `nats-server -js`, or `docker compose -f deploy/compose.yaml up -d nats`.');
    }
    console.error(`gradpool-coordinator: ${msg}${hints.map((h) => `\n  ${h}`).join('')}`);
    process.exit(1);
  }
  if (handle.generatedAdminKey) {
    console.log(
      JSON.stringify({ event: 'admin-key-generated', key: handle.generatedAdminKey }) +
        `\n\n  No admin API key existed, so one was generated. It is shown only this once:\n\n    ${handle.generatedAdminKey}\n\n` +
        `  Use it as "Authorization: Bearer <key>". Set GRADPOOL_ADMIN_KEY to choose your own.\n`,
    );
  }
  console.log(JSON.stringify({ event: 'ready', http: handle.httpPort, grpc: handle.grpcPort, pid: process.pid }));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.error(`gradpool-coordinator: ${signal} again, exiting now`);
      process.exit(1);
    }
    stopping = true;
    handle.logger.info({ signal }, 'shutting down');
    handle.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('gradpool-coordinator: shutdown failed', err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`gradpool-coordinator: ${(err as Error)?.message ?? String(err)}`);
  process.exit(1);
});
