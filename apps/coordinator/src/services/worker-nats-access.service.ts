/**
 * What a worker gets to reach the data plane. With `GRADPOOL_NATS_ACCOUNT_SEED` set, each
 * Assignment carries a NATS user of its own, limited to that job's subjects and buckets
 * (libs/nats-auth, docs/nats-auth.md), and registration hands out the servers only; otherwise
 * every worker gets the configured shared credentials at registration.
 *
 * Users lapse (GRADPOOL_WORKER_NATS_TTL_MS). Workers still assigned get fresh ones
 * (NatsAccessRefresh) every half-life and whenever their session (re)attaches; their connection
 * uses them at its next reconnect. Each user is recorded (`worker_nats_users`), so that one whose
 * worker leaves the job can be revoked before it lapses (NatsRevocationService).
 */
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { workerNatsUsers, type DbHandle } from '@gradpool/db';
import { WorkerCredentialIssuer } from '@gradpool/nats-auth';
import type { NatsAccess } from '@gradpool/protocol';
import type { CoordinatorConfig } from '../config.js';
import { CONFIG, DATABASE, LOGGER } from '../tokens.js';
import type { Logger } from '../logger.js';
import { JobRepository } from '../repositories/job.repository.js';
import { RosterRepository } from '../repositories/roster.repository.js';
import { DatasetService } from './dataset.service.js';
import { SessionRegistry } from './session-registry.js';

@Injectable()
export class WorkerNatsAccessService implements OnModuleInit, OnModuleDestroy {
  private readonly issuer: WorkerCredentialIssuer | null;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private offAttached: (() => void) | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(LOGGER) logger: Logger,
    @Inject(DATABASE) private readonly handle: DbHandle,
    private readonly registry: SessionRegistry,
    private readonly rosters: RosterRepository,
    private readonly jobs: JobRepository,
    private readonly datasets: DatasetService,
  ) {
    const users = config.workerNatsUsers;
    this.issuer = users ? WorkerCredentialIssuer.fromSeed(users.accountSeed, { ttlMs: users.ttlMs }) : null;
    this.log = logger.child({ component: 'nats-access' });
    const log = this.log;
    if (this.issuer) log.info({ account: this.issuer.accountPublicKey, ttlMs: users!.ttlMs }, 'workers get NATS users limited to their jobs');
    else log.warn('workers share one NATS identity (set GRADPOOL_NATS_ACCOUNT_SEED for per-worker users limited to their jobs; docs/nats-auth.md)');
  }

  onModuleInit(): void {
    if (!this.issuer) return;
    const refresh = (ids: string[]) => void this.refresh(ids).catch((err: unknown) => this.log.error({ err }, 'refreshing NATS users failed'));
    this.offAttached = this.registry.on('attached', (id) => refresh([id]));
    this.timer = setInterval(() => refresh(this.registry.workerIds()), Math.max(1000, this.config.workerNatsUsers!.ttlMs / 2));
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.offAttached?.();
  }

  /** Sends each of `workerIds` that is assigned a job a fresh NATS user for it; returns how many. */
  async refresh(workerIds: string[]): Promise<number> {
    if (!this.issuer) return 0;
    let sent = 0;
    for (const { workerId, jobId } of await this.rosters.currentJobs(workerIds)) {
      const nats = await this.forJob(workerId, jobId);
      if (this.registry.send(workerId, { natsRefresh: { jobId, nats } })) sent++;
    }
    return sent;
  }

  /** Whether each worker gets its own NATS user per job. */
  get perWorker(): boolean {
    return this.issuer !== null;
  }

  /** The access of worker `workerId` for job `jobId`; undefined when workers share the registration's. */
  async forJob(workerId: string, jobId: string): Promise<NatsAccess | undefined> {
    if (!this.issuer) return undefined;
    // Shards: read-only, in the bucket of the job's dataset only (its own, or the shared one).
    const job = await this.jobs.findById(jobId);
    const shardsBucket = job?.datasetId ? this.datasets.bucketOf((await this.datasets.datasetRow(job.datasetId)) ?? { shardBucket: null }) : undefined;
    const c = await this.issuer.forJob(workerId, jobId, { shardsBucket });
    // Recorded before it is handed out: a user nobody knows of could not be revoked.
    await this.handle.db.insert(workerNatsUsers).values({ userKey: c.userKey, workerId, jobId, issuedAt: new Date(c.issuedAt * 1000), expiresAt: new Date(c.expiresAt) });
    return { servers: [...this.config.natsAdvertise], creds: c.creds, inboxPrefix: c.inboxPrefix };
  }
}
