import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { CoordinatorConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { SessionService } from '../services/session.service.js';
import { CONFIG, LOGGER } from '../tokens.js';
import { PeriodicPass } from './periodic-pass.js';

/**
 * Marks workers offline after interval × misses without a heartbeat. Ticks every heartbeat
 * interval (at most every second), one tick at a time. Idempotent across replicas: the update
 * only returns workers it changed.
 */
@Injectable()
export class WorkerLivenessScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly loop: PeriodicPass;

  constructor(
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(LOGGER) logger: Logger,
    private readonly sessions: SessionService,
  ) {
    this.loop = new PeriodicPass('liveness pass', this.periodMs, () => this.tick(), logger.child({ component: 'liveness' }));
  }

  get periodMs(): number {
    return Math.min(this.config.heartbeat.intervalMs, 1000);
  }

  onApplicationBootstrap(): void {
    this.loop.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.loop.stop();
  }

  /** One pass (also used by tests). */
  async tick(): Promise<string[]> {
    return this.sessions.markSilentOffline();
  }
}
