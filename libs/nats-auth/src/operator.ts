/**
 * A NATS deployment in operator mode (decentralised JWT auth) for Gradpool: one operator, a
 * system account, and the `GRADPOOL` account that holds every stream and subject. The
 * coordinator connects as an unrestricted user of that account and holds the account's seed, with
 * which it signs each worker's user (`WorkerCredentialIssuer`). nats-server needs no restart or
 * reload when a worker joins: it verifies the user JWT against the account its resolver holds. To
 * take a user away before it lapses, the coordinator also holds the operator's seed and a user of
 * the system account: it signs the account again with the user in its revocation list and pushes
 * that to the servers (`AccountRevocations`, revocations.ts), which keep it on disk.
 *
 * `gradpool-coordinator nats-init` writes these files for a deployment; the demo and the tests
 * make a throwaway one.
 */
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys';

export interface NatsOperatorSetup {
  operatorJwt: string;
  /** Signs the accounts: the coordinator re-signs the Gradpool account to revoke users (secret). */
  operatorSeed: string;
  systemAccount: { publicKey: string; jwt: string };
  /** The account of every Gradpool subject, stream and user; `seed` signs users (keep it secret). */
  account: { publicKey: string; jwt: string; seed: string };
  /** A credentials file (user JWT + nkey seed) for the coordinator: no permission limits. */
  coordinatorCreds: string;
  /** A credentials file of a system-account user that may only push and look up the Gradpool account. */
  systemCreds: string;
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

/** The system account: connections and subscriptions, no JetStream. */
const SYSTEM_LIMITS = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * The Gradpool account's JWT, signed by the operator: the same claims whenever it is made, with
 * `revocations` (user public key → unix seconds: the user's JWTs issued at or before are refused).
 */
export async function gradpoolAccountJwt(accountPublicKey: string, operator: KeyPair, revocations: Record<string, number> = {}): Promise<string> {
  const revoked = Object.keys(revocations).length > 0;
  return encodeAccount('GRADPOOL', accountPublicKey, { limits: ACCOUNT_LIMITS, ...(revoked ? { revocations } : {}) }, { signer: operator });
}

/** Makes new operator, system account, Gradpool account and coordinator user keys and JWTs. */
export async function createNatsOperator(name = 'gradpool'): Promise<NatsOperatorSetup> {
  const op = createOperator();
  const sys = createAccount();
  const acc = createAccount();
  const operatorJwt = await encodeOperator(name, op, { system_account: sys.getPublicKey() });
  const sysJwt = await encodeAccount('SYS', sys, { limits: SYSTEM_LIMITS }, { signer: op });
  const accJwt = await gradpoolAccountJwt(acc.getPublicKey(), op);
  const coord = createUser();
  const coordJwt = await encodeUser('gradpool-coordinator', coord, acc);
  const sysUser = createUser();
  // It may only push the Gradpool account's updates, look up what the servers hold of it, and
  // read the replies: nothing else of the system account.
  const sysUserJwt = await encodeUser('gradpool-coordinator-system', sysUser, sys, {
    pub: { allow: [`$SYS.REQ.ACCOUNT.${acc.getPublicKey()}.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.${acc.getPublicKey()}.CLAIMS.LOOKUP`] },
    sub: { allow: ['_INBOX.>'] },
  });
  return {
    operatorJwt,
    operatorSeed: text(op.getSeed()),
    systemAccount: { publicKey: sys.getPublicKey(), jwt: sysJwt },
    account: { publicKey: acc.getPublicKey(), jwt: accJwt, seed: text(acc.getSeed()) },
    coordinatorCreds: text(fmtCreds(coordJwt, coord)),
    systemCreds: text(fmtCreds(sysUserJwt, sysUser)),
  };
}

/**
 * A nats-server configuration for `setup`. The accounts are kept by nats-server's own resolver
 * (`type: full`) in `jwtDir`, with both preloaded: an update the coordinator pushes (a user's
 * revocation) is written there, so a restarted server still refuses the revoked users, and servers
 * of a cluster pass updates to each other (to one that was down within 30 s). A preload older than
 * what the directory holds does not replace it. Address, port and JetStream storage are written only when
 * given (a caller may pass them as flags).
 */
export function natsServerConfig(setup: NatsOperatorSetup, opts: { jwtDir: string; host?: string; port?: number; storeDir?: string }): string {
  return [
    ...(opts.host !== undefined ? [`host: ${JSON.stringify(opts.host)}`] : []),
    ...(opts.port !== undefined ? [`port: ${opts.port}`] : []),
    `operator: ${setup.operatorJwt}`,
    `system_account: ${setup.systemAccount.publicKey}`,
    // allow_delete: false: nothing may remove the accounts; interval: how often a server of a
    // cluster compares what it holds with another's (a server that was down when an update was
    // pushed gets it then; the default is 2 minutes).
    `resolver: { type: full, dir: ${JSON.stringify(opts.jwtDir)}, allow_delete: false, interval: "30s" }`,
    'resolver_preload: {',
    `  ${setup.account.publicKey}: ${setup.account.jwt}`,
    `  ${setup.systemAccount.publicKey}: ${setup.systemAccount.jwt}`,
    '}',
    ...(opts.storeDir !== undefined ? [`jetstream: { store_dir: ${JSON.stringify(opts.storeDir)} }`] : []),
    '',
  ].join('\n');
}
