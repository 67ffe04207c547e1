/**
 * Takes a worker's NATS users away as soon as it leaves their job (removed from the roster,
 * drained, gone offline, the job ended or paused), not when they lapse (docs/nats-auth.md).
 *
 * Every pass (every 2 s, on every replica: the update is atomic and pushes are
 * idempotent) marks revoked the unexpired users (`worker_nats_users`) whose worker is no longer
 * assigned their job, and pushes the account with every revoked user that has not lapsed yet to
 * the NATS servers (`AccountRevocations`): a server then closes those users' connections and
 * refuses their sign-ins, and keeps the update on disk. The whole list goes again after the system
 * connection reconnects and once a minute, for a server that lost its disk or forgets pushed
 * updates when it restarts (`resolver: MEMORY`).
 * Needs GRADPOOL_NATS_OPERATOR_SEED and GRADPOOL_NATS_SYSTEM_CREDS; without them users only lapse.
 */
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { type DbHandle } from '@gradpool/db';
import { AccountRevocations } from '@gradpool/nats-auth';
import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, Events, type NatsConnection } from 'nats';
import { sql } from 'drizzle-orm';
import type { CoordinatorConfig } from '../config.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import { PeriodicPass } from '../schedulers/periodic-pass.js';
import { CONFIG, DATABASE, LOGGER } from '../tokens.js';
import { JobEventsService } from './job-events.service.js';

/** How often a pass runs. */
const PASS_MS = 2000;
/** The list is pushed again at least this often, changed or not. */
const REPUSH_MS = 60_000;
/** Rows of users that lapsed longer ago than this are deleted. */
const KEEP_LAPSED_MS = 3_600_000;

export interface RevocationPass {
  /** Users revoked by this pass: worker, job, user key. */
  revoked: { workerId: string; jobId: string; userKey: string }[];
  /** Whether the list went to the servers. */
  pushed: boolean;
}

@Injectable()
export class NatsRevocationService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly revocations: AccountRevocations | null;
  private system: NatsConnection | undefined;
  private readonly log: Logger;
  private readonly loop: PeriodicPass;
  private lastPushed = '';
  private lastPushAt = 0;
  private pushNeeded = true;

  constructor(
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(LOGGER) logger: Logger,
    private readonly events: JobEventsService,
  ) {
    this.log = logger.child({ component: 'nats-revocation' });
    this.loop = new PeriodicPass('NATS revocation pass', PASS_MS, () => this.pass(), this.log);
    const users = config.workerNatsUsers;
    this.revocations = users?.revocation ? AccountRevocations.fromSeeds(users.revocation.operatorSeed, users.accountSeed) : null;
    if (users && !this.revocations) this.log.warn('workers\' NATS users cannot be revoked before they lapse (set GRADPOOL_NATS_OPERATOR_SEED and GRADPOOL_NATS_SYSTEM_CREDS; docs/nats-auth.md)');
  }

  /** Whether users are revoked (configured). */
  get enabled(): boolean {
    return this.revocations !== null;
  }

  async onModuleInit(): Promise<void> {
    const file = this.config.workerNatsUsers?.revocation?.systemCredsFile;
    if (!this.revocations || !file) return;
    let creds: Uint8Array;
    try {
      creds = await readFile(file);
    } catch (err) {
      throw new UnavailableError(`cannot read the NATS system user's credentials ${file} (GRADPOOL_NATS_SYSTEM_CREDS): ${(err as Error).message}`, { cause: err });
    }
    try {
      this.system = await connect({
        servers: [...this.config.natsServers],
        authenticator: credsAuthenticator(creds),
        name: 'gradpool-coordinator-revocations',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        timeout: 5000,
      });
    } catch (err) {
      throw new UnavailableError(`cannot reach NATS as the system user of ${file} (GRADPOOL_NATS_SYSTEM_CREDS): ${(err as Error).message}`, { cause: err });
    }
    void (async () => {
      for await (const s of this.system!.status()) if (s.type === Events.Reconnect) this.pushNeeded = true;
    })();
    // The first push at start: seeds that do not match the servers' operator fail here, not later.
    try {
      await this.pass();
    } catch (err) {
      await this.system.close().catch(() => undefined);
      throw new UnavailableError(
        `cannot push workers' NATS revocations: ${(err as Error).message} (GRADPOOL_NATS_OPERATOR_SEED and GRADPOOL_NATS_SYSTEM_CREDS must be the operator and a system user of the NATS servers; gradpool nats init writes matching ones)`,
        { cause: err },
      );
    }
    this.log.info({ account: this.revocations.accountPublicKey }, 'workers\' NATS users are revoked when they leave their job');
  }

  onApplicationBootstrap(): void {
    if (this.system) this.loop.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.loop.stop();
    await this.system?.close().catch(() => undefined);
  }

  /** One pass: revokes the users of workers no longer on their job, pushes the list when needed. */
  async pass(): Promise<RevocationPass> {
    if (!this.revocations || !this.system) return { revoked: [], pushed: false };
    const db = this.handle.db;
    const revoked = (
      await db.execute<{ worker_id: string; job_id: string; user_key: string }>(sql`
        UPDATE worker_nats_users u SET revoked_at = now()
        WHERE u.revoked_at IS NULL AND u.expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = u.worker_id AND w.current_job_id = u.job_id)
        RETURNING u.worker_id, u.job_id, u.user_key`)
    ).rows.map((r) => ({ workerId: r.worker_id, jobId: r.job_id, userKey: r.user_key }));
    const list = (
      // Each user key is issued once, so revoking its JWTs issued up to its own `iat` is exact and
      // needs no agreement between the clocks of Postgres, the coordinator and the servers.
      await db.execute<{ user_key: string; issued_s: string }>(sql`
        SELECT user_key, extract(epoch FROM issued_at)::bigint AS issued_s FROM worker_nats_users
        WHERE revoked_at IS NOT NULL AND expires_at > now() ORDER BY user_key`)
    ).rows;
    const map = Object.fromEntries(list.map((r) => [r.user_key, Number(r.issued_s)]));
    const key = JSON.stringify(map);
    let pushed = false;
    if (revoked.length || this.pushNeeded || key !== this.lastPushed || Date.now() - this.lastPushAt > REPUSH_MS) {
      this.pushNeeded = false;
      try {
        await this.revocations.push(this.system, map);
      } catch (err) {
        this.pushNeeded = true;
        throw err;
      }
      this.lastPushed = key;
      this.lastPushAt = Date.now();
      pushed = true;
    }
    await db.execute(sql`DELETE FROM worker_nats_users WHERE expires_at < now() - make_interval(secs => ${KEEP_LAPSED_MS / 1000})`);
    const byWorkerJob = new Map<string, { workerId: string; jobId: string; users: number }>();
    for (const r of revoked) {
      const k = `${r.workerId}/${r.jobId}`;
      const e = byWorkerJob.get(k) ?? { workerId: r.workerId, jobId: r.jobId, users: 0 };
      e.users++;
      byWorkerJob.set(k, e);
    }
    for (const e of byWorkerJob.values()) {
      this.log.info(e, 'NATS users revoked: the worker left the job');
      await this.events.record(e.jobId, 'worker.nats-revoked', { users: e.users }, { workerId: e.workerId });
    }
    return { revoked, pushed };
  }
}
