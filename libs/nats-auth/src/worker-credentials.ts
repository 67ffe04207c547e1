/**
 * Signs a NATS user per worker and job (`workerJobPermissions`), with the Gradpool account's seed
 * (operator.ts). The coordinator hands the credentials out with each Assignment; a worker never
 * holds rights beyond the jobs it is assigned, and they lapse at `exp`.
 */
import { decode, encodeUser, fmtCreds } from '@nats-io/jwt';
import { createUser, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { workerInboxPrefix, workerJobPermissions } from './permissions.js';

export class NatsAuthConfigError extends Error {
  override name = 'NatsAuthConfigError';
}

export interface WorkerCredentials {
  /** A credentials file's content: the user JWT and its nkey seed. */
  creds: string;
  /** The inbox prefix the connection must use (its only subscribable inbox). */
  inboxPrefix: string;
  /** When the server stops accepting the user (ms since the epoch). */
  expiresAt: number;
  /** The user's public key: what a revocation names. */
  userKey: string;
  /** When its JWT was issued (unix seconds, the JWT's `iat`). */
  issuedAt: number;
}

export class WorkerCredentialIssuer {
  private constructor(
    private readonly account: KeyPair,
    private readonly ttlMs: number,
  ) {}

  /** `accountSeed`: the Gradpool account's nkey seed (`SA…`). */
  static fromSeed(accountSeed: string, opts: { ttlMs: number }): WorkerCredentialIssuer {
    let kp: KeyPair;
    try {
      kp = fromSeed(new TextEncoder().encode(accountSeed.trim()));
    } catch (err) {
      throw new NatsAuthConfigError(`the NATS account seed is not an nkey seed: ${(err as Error).message}`);
    }
    if (!kp.getPublicKey().startsWith('A')) throw new NatsAuthConfigError('the NATS account seed is not an account seed (it must start with SA)');
    if (!(opts.ttlMs >= 10_000)) throw new NatsAuthConfigError(`worker credentials must live at least 10 s, not ${opts.ttlMs} ms`);
    return new WorkerCredentialIssuer(kp, opts.ttlMs);
  }

  /** The account's public key (what the server's resolver must know). */
  get accountPublicKey(): string {
    return this.account.getPublicKey();
  }

  /** Credentials of worker `workerId` for job `jobId` (`shardsBucket`: its dataset's bucket; default the shared one). */
  async forJob(workerId: string, jobId: string, opts: { shardsBucket?: string; now?: number } = {}): Promise<WorkerCredentials> {
    const now = opts.now ?? Date.now();
    const perms = workerJobPermissions(workerId, jobId, { shardsBucket: opts.shardsBucket });
    const user = createUser();
    const expiresAt = now + this.ttlMs;
    const jwt = await encodeUser(
      `worker ${workerId} job ${jobId}`,
      user,
      this.account,
      { pub: { allow: perms.pub }, sub: { allow: perms.sub }, bearer_token: false },
      { exp: Math.floor(expiresAt / 1000) },
    );
    const issuedAt = decode(jwt).iat;
    return { creds: new TextDecoder().decode(fmtCreds(jwt, user)), inboxPrefix: workerInboxPrefix(workerId), expiresAt, userKey: user.getPublicKey(), issuedAt };
  }
}
