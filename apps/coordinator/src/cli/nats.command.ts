/**
 * `gradpool nats init --out DIR`: a NATS deployment with per-worker users (docs/nats-auth.md).
 * Writes a nats-server configuration in operator mode (a new operator, system account and the
 * Gradpool account, preloaded into the server's own resolver, which keeps them, and the
 * revocations pushed to it, in --jwt-dir), the coordinator's credentials file, its system user's
 * credentials file (to revoke workers' users), and an env file with NATS_CREDS,
 * GRADPOOL_NATS_ACCOUNT_SEED, GRADPOOL_NATS_OPERATOR_SEED and GRADPOOL_NATS_SYSTEM_CREDS for the
 * coordinator. Offline: it talks to no server.
 */
import { createNatsOperator, natsServerConfig } from '@gradpool/nats-auth';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CliIo } from './run.js';

const portArg = (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1 || x > 65535) throw new InvalidArgumentError('--port must be an integer in [1, 65535]');
  return x;
};

export const NATS_INIT_FILES = { config: 'nats-server.conf', creds: 'coordinator.creds', systemCreds: 'system.creds', env: 'coordinator.env' } as const;

export function natsCommand(io: CliIo): Command {
  const nats = new Command('nats').description('NATS for Gradpool: per-worker users limited to their jobs');
  nats
    .command('init')
    .description('write a nats-server config (operator mode), the coordinator credentials and its env file')
    .requiredOption('--out <dir>', 'directory for the files (created if missing)')
    .option('--host <host>', 'address nats-server listens on', '0.0.0.0')
    .option('--port <port>', 'client port', portArg, 4222)
    .option('--store-dir <dir>', 'JetStream storage directory', '/var/lib/nats-server')
    .option('--jwt-dir <dir>', 'where nats-server keeps the accounts and the revocations pushed to it (default: <store-dir>/jwt)')
    .option('--force', 'overwrite files that exist (a new operator: users issued before no longer connect)')
    .action(async (o: { out: string; host: string; port: number; storeDir: string; jwtDir?: string; force?: boolean }) => {
      const dir = resolve(o.out);
      const files = Object.values(NATS_INIT_FILES).map((f) => join(dir, f));
      const existing = files.filter((f) => existsSync(f));
      if (existing.length && !o.force) {
        throw new CommanderError(2, 'gradpool.exists', `${existing.join(', ')} exist${existing.length === 1 ? 's' : ''}; pass --force to replace (workers' and the coordinator's current credentials stop working)`);
      }
      const setup = await createNatsOperator();
      await mkdir(dir, { recursive: true });
      const credsFile = join(dir, NATS_INIT_FILES.creds);
      await writeFile(join(dir, NATS_INIT_FILES.config), natsServerConfig(setup, { host: o.host, port: o.port, storeDir: o.storeDir, jwtDir: o.jwtDir ?? join(o.storeDir, 'jwt') }));
      await writeFile(credsFile, setup.coordinatorCreds, { mode: 0o600 });
      const systemCredsFile = join(dir, NATS_INIT_FILES.systemCreds);
      await writeFile(systemCredsFile, setup.systemCreds, { mode: 0o600 });
      const env = [
        `NATS_CREDS=${credsFile}`,
        `GRADPOOL_NATS_ACCOUNT_SEED=${setup.account.seed}`,
        `GRADPOOL_NATS_OPERATOR_SEED=${setup.operatorSeed}`,
        `GRADPOOL_NATS_SYSTEM_CREDS=${systemCredsFile}`,
      ];
      await writeFile(join(dir, NATS_INIT_FILES.env), env.join('\n') + '\n', { mode: 0o600 });
      io.out(`wrote ${files.join(', ')}`);
      io.out(`start NATS:        nats-server -c ${join(dir, NATS_INIT_FILES.config)}`);
      io.out(`start coordinator: set -a; . ${join(dir, NATS_INIT_FILES.env)}; set +a; NATS_URL=nats://<host>:${o.port} gradpool-coordinator`);
      io.out('keep coordinator.creds, system.creds and coordinator.env secret: their seeds sign every worker\'s NATS user and the account');
    });
  return nats;
}
