/**
 * What a worker gets to reach the data plane. With `GRADPOOL_NATS_ACCOUNT_SEED` set, each
 * Assignment carries a NATS user of its own, limited to that job's subjects and buckets
 * (libs/nats-auth, docs/nats-auth.md), and registration hands out the servers only; otherwise
 * every worker gets the configured shared credentials at registration.
 */
import { Inject, Injectable } from '@nestjs/common';
import { WorkerCredentialIssuer } from '@gradpool/nats-auth';
import type { NatsAccess } from '@gradpool/protocol';
import type { CoordinatorConfig } from '../config.js';
import { CONFIG, LOGGER } from '../tokens.js';
import type { Logger } from '../logger.js';

@Injectable()
export class WorkerNatsAccessService {
  private readonly issuer: WorkerCredentialIssuer | null;

  constructor(@Inject(CONFIG) private readonly config: CoordinatorConfig, @Inject(LOGGER) logger: Logger) {
    const users = config.workerNatsUsers;
    this.issuer = users ? WorkerCredentialIssuer.fromSeed(users.accountSeed, { ttlMs: users.ttlMs }) : null;
    const log = logger.child({ component: 'nats-access' });
    if (this.issuer) log.info({ account: this.issuer.accountPublicKey, ttlMs: users!.ttlMs }, 'workers get NATS users limited to their jobs');
    else log.warn('workers share one NATS identity (set GRADPOOL_NATS_ACCOUNT_SEED for per-worker users limited to their jobs; docs/nats-auth.md)');
  }

  /** Whether each worker gets its own NATS user per job. */
  get perWorker(): boolean {
    return this.issuer !== null;
  }

  /** The access of worker `workerId` for job `jobId`; undefined when workers share the registration's. */
  async forJob(workerId: string, jobId: string): Promise<NatsAccess | undefined> {
    if (!this.issuer) return undefined;
    const c = await this.issuer.forJob(workerId, jobId);
    return { servers: [...this.config.natsAdvertise], creds: c.creds, inboxPrefix: c.inboxPrefix };
  }
}
