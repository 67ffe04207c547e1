/**
 * Takes NATS users away before they lapse. A user JWT stays valid until its `exp`; the account's
 * JWT can list users whose JWTs the servers must refuse (revocations). The coordinator holds the
 * operator's seed, re-signs the Gradpool account with the users it revoked, and pushes it to the
 * servers as a claims update through a system-account connection. A server closes the revoked
 * users' connections at once and refuses their sign-ins; the update reaches every server of a
 * cluster. Servers that preload the account (`resolver: MEMORY`) forget updates when they restart,
 * so the whole list is pushed again on a reconnect and at intervals (the caller's loop).
 */
import { fromSeed, type KeyPair } from '@nats-io/nkeys';
import type { NatsConnection } from 'nats';
import { gradpoolAccountJwt } from './operator.js';
import { NatsAuthConfigError } from './worker-credentials.js';

export class RevocationPushError extends Error {
  override name = 'RevocationPushError';
}

export class AccountRevocations {
  private constructor(
    private readonly operator: KeyPair,
    readonly accountPublicKey: string,
  ) {}

  /** `operatorSeed`: the operator's nkey seed (`SO…`); `accountSeed`: the Gradpool account's (`SA…`). */
  static fromSeeds(operatorSeed: string, accountSeed: string): AccountRevocations {
    const key = (seed: string, what: string, prefix: string) => {
      let kp: KeyPair;
      try {
        kp = fromSeed(new TextEncoder().encode(seed.trim()));
      } catch (err) {
        throw new NatsAuthConfigError(`the NATS ${what} seed is not an nkey seed: ${(err as Error).message}`);
      }
      if (!kp.getPublicKey().startsWith(prefix)) throw new NatsAuthConfigError(`the NATS ${what} seed is not an ${what} seed (it must start with S${prefix})`);
      return kp;
    };
    return new AccountRevocations(key(operatorSeed, 'operator', 'O'), key(accountSeed, 'account', 'A').getPublicKey());
  }

  /** The account's JWT with `revoked` (user public key → unix seconds). */
  accountJwt(revoked: Record<string, number>): Promise<string> {
    return gradpoolAccountJwt(this.accountPublicKey, this.operator, revoked);
  }

  /**
   * Pushes the account with exactly `revoked` to the servers through `system` (a connection of a
   * system-account user). Resolves when a server accepted it; throws RevocationPushError with the
   * server's reason otherwise.
   */
  async push(system: NatsConnection, revoked: Record<string, number>, timeoutMs = 5000): Promise<void> {
    const jwt = await this.accountJwt(revoked);
    let reply: { data?: { code?: number; message?: string }; error?: { code?: number; description?: string } };
    try {
      const m = await system.request(`$SYS.REQ.ACCOUNT.${this.accountPublicKey}.CLAIMS.UPDATE`, new TextEncoder().encode(jwt), { timeout: timeoutMs });
      reply = JSON.parse(new TextDecoder().decode(m.data)) as typeof reply;
    } catch (err) {
      throw new RevocationPushError(`no NATS server took the account update: ${(err as Error).message}`);
    }
    if (reply.error || reply.data?.code !== 200) {
      throw new RevocationPushError(`the NATS server refused the account update: ${reply.error?.description ?? reply.data?.message ?? JSON.stringify(reply)}`);
    }
  }
}
