import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { CoordinatorConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { SessionService } from '../services/session.service.js';
import { CONFIG, LOGGER } from '../tokens.js';
import { shutdownPart } from '../shutdown.js';

/**
 * Marks workers offline after interval × misses without a heartbeat. Ticks every heartbeat
 * interval (at most every second), one tick at a time. Idempotent across replicas: the update
 * only returns workers it changed.
 */
@Injectable()
export class WorkerLivenessScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(LOGGER) logger: Logger,
    private readonly sessions: SessionService,
  ) {
    this.log = logger.child({ component: 'liveness' });
  }

  get periodMs(): number {
    return Math.min(this.config.heartbeat.intervalMs, 1000);
  }

  onApplicationBootstrap(): void {
    this.schedule();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await shutdownPart('liveness pass in progress', async () => this.running);
  }

  /** One pass (also used by tests). */
  async tick(): Promise<string[]> {
    return this.sessions.markSilentOffline();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .then(
          () => undefined,
          (err: unknown) => this.log.warn({ err }, 'liveness pass failed'),
        )
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.periodMs);
  }
}
