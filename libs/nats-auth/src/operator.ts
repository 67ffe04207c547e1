/**
 * A NATS deployment in operator mode (decentralised JWT auth) for Gradpool: one operator, a
 * system account, and the `GRADPOOL` account that holds every stream and subject. The
 * coordinator connects as an unrestricted user of that account and holds the account's seed, with
 * which it signs each worker's user (`WorkerCredentialIssuer`). nats-server needs no restart or
 * reload when a worker joins: it verifies the user JWT against the account it preloaded.
 *
 * `gradpool-coordinator nats-init` writes these files for a deployment; the demo and the tests
 * make a throwaway one.
 */
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { createAccount, createOperator, createUser } from '@nats-io/nkeys';

export interface NatsOperatorSetup {
  operatorJwt: string;
  systemAccount: { publicKey: string; jwt: string };
  /** The account of every Gradpool subject, stream and user; `seed` signs users (keep it secret). */
  account: { publicKey: string; jwt: string; seed: string };
  /** A credentials file (user JWT + nkey seed) for the coordinator: no permission limits. */
  coordinatorCreds: string;
}

/** Account limits: unlimited, JetStream enabled. */
const ACCOUNT_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Makes new operator, system account, Gradpool account and coordinator user keys and JWTs. */
export async function createNatsOperator(name = 'gradpool'): Promise<NatsOperatorSetup> {
  const op = createOperator();
  const sys = createAccount();
  const acc = createAccount();
  const operatorJwt = await encodeOperator(name, op, { system_account: sys.getPublicKey() });
  const sysJwt = await encodeAccount('SYS', sys, {}, { signer: op });
  const accJwt = await encodeAccount('GRADPOOL', acc, { limits: ACCOUNT_LIMITS }, { signer: op });
  const coord = createUser();
  const coordJwt = await encodeUser('gradpool-coordinator', coord, acc);
  return {
    operatorJwt,
    systemAccount: { publicKey: sys.getPublicKey(), jwt: sysJwt },
    account: { publicKey: acc.getPublicKey(), jwt: accJwt, seed: text(acc.getSeed()) },
    coordinatorCreds: text(fmtCreds(coordJwt, coord)),
  };
}

/**
 * A nats-server configuration for `setup` (memory resolver with both accounts preloaded). Address,
 * port and JetStream storage are written only when given (a caller may pass them as flags).
 */
export function natsServerConfig(setup: NatsOperatorSetup, opts: { host?: string; port?: number; storeDir?: string } = {}): string {
  return [
    ...(opts.host !== undefined ? [`host: ${JSON.stringify(opts.host)}`] : []),
    ...(opts.port !== undefined ? [`port: ${opts.port}`] : []),
    `operator: ${setup.operatorJwt}`,
    `system_account: ${setup.systemAccount.publicKey}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${setup.account.publicKey}: ${setup.account.jwt}`,
    `  ${setup.systemAccount.publicKey}: ${setup.systemAccount.jwt}`,
    '}',
    ...(opts.storeDir !== undefined ? [`jetstream: { store_dir: ${JSON.stringify(opts.storeDir)} }`] : []),
    '',
  ].join('\n');
}
