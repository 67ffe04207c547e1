/**
 * A private nats-server in operator mode (decentralised JWT auth, libs/nats-auth) for tests of
 * per-worker NATS users: a fresh operator and account, the coordinator's credentials file, and the
 * account seed the coordinator signs workers' users with.
 */
import { createNatsOperator, natsServerConfig, type NatsOperatorSetup } from '@gradpool/nats-auth';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DevServicesError, freePort } from './dev-services.js';

export interface SecuredNats {
  url: string;
  setup: NatsOperatorSetup;
  /** The coordinator's credentials file (NATS_CREDS). */
  credsFile: string;
  /** Environment for a coordinator using this server with per-worker users. */
  coordinatorEnv: Record<string, string>;
  close(): Promise<void>;
}

/** Starts `bin` (nats-server) with a new operator setup under `dir`; resolves once it is ready. */
export async function startSecuredNatsServer(bin: string, dir: string): Promise<SecuredNats> {
  mkdirSync(dir, { recursive: true });
  const setup = await createNatsOperator();
  const port = await freePort();
  const confFile = join(dir, 'nats-server.conf');
  writeFileSync(confFile, natsServerConfig(setup, { host: '127.0.0.1', port, storeDir: join(dir, 'jetstream') }));
  const credsFile = join(dir, 'coordinator.creds');
  writeFileSync(credsFile, setup.coordinatorCreds, { mode: 0o600 });
  const child = spawn(bin, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
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
  const url = `nats://127.0.0.1:${port}`;
  return {
    url,
    setup,
    credsFile,
    coordinatorEnv: { NATS_URL: url, NATS_CREDS: credsFile, GRADPOOL_NATS_ACCOUNT_SEED: setup.account.seed },
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
