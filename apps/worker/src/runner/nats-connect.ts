/** The runner's connection to the data plane, made from the NatsAccess of the registration. */
import type { NatsAccess__Output } from '@gradpool/protocol';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from 'nats';
import { FaultKinds, RunnerFault } from './faults.js';

/**
 * Connection options for `access`: the exchange needs `noEcho` (it must not receive its own
 * gathers) and a client that never gives up reconnecting (a reconnect resends the round).
 */
export function natsOptions(access: NatsAccess__Output, name: string, latest: () => NatsAccess__Output | null = () => null): ConnectionOptions {
  if (access.servers.length === 0) throw new RunnerFault(FaultKinds.noDataPlane, 'the registration named no NATS server');
  const opts: ConnectionOptions = {
    servers: access.servers,
    name,
    noEcho: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 10_000,
  };
  // A per-worker NATS user may subscribe to its own inbox prefix only (libs/nats-auth).
  if (access.inboxPrefix) opts.inboxPrefix = access.inboxPrefix;
  if (access.creds) {
    // Read at every (re)connect: a per-worker user lapses, and the server then closes the
    // connection; the reconnect signs in with the newest credentials the coordinator sent.
    opts.authenticator = (nonce?: string) => credsAuthenticator(new TextEncoder().encode(latest()?.creds || access.creds))(nonce);
  }
  else if (access.token) opts.token = access.token;
  else if (access.user) {
    opts.user = access.user;
    opts.pass = access.password;
  }
  return opts;
}

/** Connects, naming the server and the reason when it fails. */
export async function connectDataPlane(access: NatsAccess__Output | null, name: string, latest?: () => NatsAccess__Output | null): Promise<NatsConnection> {
  if (!access) throw new RunnerFault(FaultKinds.noDataPlane, 'the registration came without NATS access');
  const opts = natsOptions(access, name, latest);
  try {
    return await connect(opts);
  } catch (err) {
    throw new RunnerFault(FaultKinds.noDataPlane, `cannot connect to NATS at ${access.servers.join(', ')}: ${(err as Error).message}`);
  }
}
