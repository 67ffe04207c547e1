import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { CoordinatorConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { JobRosterService } from '../services/job-roster.service.js';
import { KeeperService } from '../services/keeper.service.js';
import { SchedulingService } from '../services/scheduling.service.js';
import { SessionRegistry } from '../services/session-registry.js';
import { CONFIG, LOGGER } from '../tokens.js';
import { JOB_SCHEDULER_SETTINGS, type JobSchedulerSettings } from './job-scheduler.settings.js';

export { DEFAULT_JOB_SCHEDULER_SETTINGS, JOB_SCHEDULER_SETTINGS, type JobSchedulerSettings } from './job-scheduler.settings.js';

/**
 * Runs the scheduling pass every `periodMs` and soon after events (a worker's session opened or
 * ended, a job submitted or resumed). One pass at a time; only the lock holder acts.
 */
@Injectable()
export class JobScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(LOGGER) logger: Logger,
    @Inject(JOB_SCHEDULER_SETTINGS) private readonly settings: JobSchedulerSettings,
    private readonly scheduling: SchedulingService,
    private readonly keepers: KeeperService,
    private readonly registry: SessionRegistry,
    private readonly roster: JobRosterService,
  ) {
    this.log = logger.child({ component: 'job-scheduler' });
  }

  onApplicationBootstrap(): void {
    if (!this.settings.enabled) return;
    this.unsubscribe.push(
      this.registry.on('attached', (workerId) => {
        void this.roster.resendRoster(workerId).catch((err) => this.log.warn({ err, workerId }, 'resending the roster failed'));
        this.kick();
      }),
      this.registry.on('detached', (workerId, reason) => {
        // A replaced stream is the same worker; a shutdown of this coordinator is not the worker leaving.
        if (reason === 'superseded' || reason === 'shutdown' || this.stopped) return;
        const gone = () => {
          // Back already (a stream that dropped and reconnected): it keeps its place.
          if (this.stopped || this.registry.has(workerId)) return;
          void this.keepers
            .workerGone(workerId, reason)
            .catch((err) => this.log.warn({ err, workerId }, 'removing a departed worker failed'))
            .finally(() => this.kick());
        };
        // A stream the worker closed may come back within the heartbeat window; silence and drain are final.
        if (reason === 'closed-by-worker') {
          const t = setTimeout(gone, this.config.heartbeat.intervalMs * this.config.heartbeat.misses);
          t.unref();
        } else gone();
      }),
    );
    this.schedule(0);
  }

  /** Runs a pass soon (coalesced). */
  kick(): void {
    if (this.stopped || !this.settings.enabled) return;
    this.schedule(0);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const u of this.unsubscribe) u();
    this.keepers.dispose();
    await this.scheduling.shutdown();
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.scheduling
        .tick()
        .catch((err: unknown) => this.log.warn({ err }, 'scheduling pass failed'))
        .finally(() => this.schedule(this.settings.periodMs));
    }, delay);
  }
}
