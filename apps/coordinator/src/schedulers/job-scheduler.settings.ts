/** The scheduling loop's settings (the `jobs.scheduler` section of the coordinator config). */
import { PRESENCE_EXPIRY_MS } from '../services/session-relay.js';

export const JOB_SCHEDULER_SETTINGS = Symbol('gradpool.jobSchedulerSettings');

export interface JobSchedulerSettings {
  /** Period of the scheduling loop (it also runs on worker and job events). */
  periodMs: number;
  /** Off: this replica never schedules (e.g. an API-only replica). */
  enabled: boolean;
  /**
   * A replica that is not the leader and hears no other replica over NATS for this long says so
   * (`SchedulingService.leaderUnheard`): the lock holder then uses another NATS, and the workers
   * connected here are never scheduled.
   */
  leaderSilenceMs: number;
}

export const DEFAULT_JOB_SCHEDULER_SETTINGS: JobSchedulerSettings = { periodMs: 1000, enabled: true, leaderSilenceMs: PRESENCE_EXPIRY_MS };

