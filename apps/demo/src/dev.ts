#!/usr/bin/env node
/**
 * `npm run dev`: the coordinator in the foreground on its usual ports (REST 8080, gRPC 50051;
 * GRADPOOL_* variables pass through), with the demo's services: DATABASE_URL / NATS_URL when
 * set, else Postgres and NATS on localhost, else an embedded Postgres and a nats-server from
 * PATH, or a message that says how to get one. Ctrl-C stops the coordinator, then the services.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { COORDINATOR_MAIN, DevServicesError, type DevServices } from '@gradpool/testing';
import { bold, dim } from './print.js';
import { ensureServices } from './services.js';

const USAGE = `Usage: npm run dev

Starts the coordinator (node apps/coordinator/dist/main.js) against DATABASE_URL / NATS_URL, or
the Postgres and NATS on 127.0.0.1 (5432, 4222), or an embedded Postgres (PGlite, data in
.gradpool/) and a nats-server found on PATH. Other settings: the coordinator's environment
variables (README, "Configuration"). Ctrl-C stops it.`;

async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  if (argv.length > 0) {
    console.error(`dev: unexpected arguments: ${argv.join(' ')}\n\n${USAGE}`);
    return 2;
  }

  let services: DevServices;
  try {
    services = await ensureServices((line) => console.error(dim(line)), 'gradpool_dev');
  } catch (err) {
    if (!(err instanceof DevServicesError)) throw err;
    console.error(`dev: ${err.message}`);
    return 1;
  }
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: services.databaseUrl, NATS_URL: services.natsUrl, ...services.coordinatorEnv };
    // An embedded PGlite serves one session at a time.
    if (services.started.includes('pglite')) env.GRADPOOL_DB_POOL_MAX = String(services.databasePoolMax);
    const child = spawn(process.execPath, [COORDINATOR_MAIN], { env, stdio: ['inherit', 'pipe', 'inherit'] });
    const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1))));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      console.log(line);
      if (!line.startsWith('{"event":"ready"')) return;
      const { http, grpc } = JSON.parse(line) as { http: number; grpc: number };
      console.error(
        `\n${bold('Coordinator ready')}: REST http://127.0.0.1:${http} (OpenAPI at /docs), gRPC 127.0.0.1:${grpc}\n` +
          dim(`  a local worker: npx gradpool-worker join --coordinator 127.0.0.1:${grpc} --token <join token> --insecure\n`),
      );
    });
    // Ctrl-C reaches the coordinator too (same process group): wait for it to drain and exit.
    process.on('SIGINT', () => undefined);
    process.on('SIGTERM', () => child.kill('SIGTERM'));
    return await exited;
  } finally {
    await services.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`dev: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
