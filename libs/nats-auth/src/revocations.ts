/**
 * Takes NATS users away before they lapse. A user JWT stays valid until its `exp`; the account's
 * JWT can list users whose JWTs the servers must refuse (revocations). The coordinator holds the
 * operator's seed, re-signs the Gradpool account with the users it revoked, and pushes it to the
 * servers as a claims update through a system-account connection. A server closes the revoked
 * users' connections at once and refuses their sign-ins; the update reaches every server of a
 * cluster. The servers of `natsServerConfig` keep the update on disk across restarts; a server that
 * lost its disk, or one configured with `resolver: MEMORY`, has forgotten it, so the whole list is
 * pushed again on a reconnect and at intervals all the same (the caller's loop).
 */
import { decode } from '@nats-io/jwt';
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
   *
   * First it reads the account the servers hold (where their resolver answers lookups, as
   * `natsServerConfig`'s does), because such a resolver stores whatever a system user pushes: an
   * account signed by another operator would be stored and would lock every user of the account
   * out, across restarts (nats-server 2.9.10 answers "jwt updated" to it). So a held account
   * signed by another operator is refused here, and a push waits (at most `timeoutMs`) until its
   * JWT, stamped in whole seconds, is newer than the held one: a resolver keeps the newer of two.
   */
  async push(system: NatsConnection, revoked: Record<string, number>, timeoutMs = 5000): Promise<void> {
    const held = await this.held(system, timeoutMs);
    if (held) {
      const operator = this.operator.getPublicKey();
      if (held.issuer !== operator) {
        throw new RevocationPushError(`the NATS servers hold the account ${this.accountPublicKey} signed by the operator ${held.issuer}, not by this operator seed's ${operator}`);
      }
      const wait = (held.issuedAt + 1) * 1000 - Date.now();
      if (wait > timeoutMs) {
        throw new RevocationPushError(`the NATS servers hold the account issued at ${new Date(held.issuedAt * 1000).toISOString()}, ${Math.ceil(wait / 1000)} s ahead of this clock: an update now would be older and ignored`);
      }
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
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

  /**
   * Who signed the account JWT the servers hold, and when, with a valid signature; null where no
   * server answers the lookup (a memory resolver, which checks the operator of what is pushed
   * itself) or the system user may not ask.
   */
  private async held(system: NatsConnection, timeoutMs: number): Promise<{ issuer: string; issuedAt: number } | null> {
    let text: string;
    try {
      const m = await system.request(`$SYS.REQ.ACCOUNT.${this.accountPublicKey}.CLAIMS.LOOKUP`, new Uint8Array(), { timeout: timeoutMs });
      text = new TextDecoder().decode(m.data).trim();
    } catch {
      return null;
    }
    if (!text) return null;
    try {
      const claims = decode(text);
      if (claims.sub !== this.accountPublicKey) throw new Error(`it is the account ${claims.sub}`);
      return { issuer: claims.iss, issuedAt: claims.iat };
    } catch (err) {
      throw new RevocationPushError(`the NATS servers answered the account lookup with what is not this account's JWT: ${(err as Error).message}`);
    }
  }
}
