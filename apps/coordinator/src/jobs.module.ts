import { Module } from '@nestjs/common';
import { JobController } from './controllers/job.controller.js';
import { DatasetsModule } from './datasets.module.js';
import type { KeeperOptions } from './keeper/job-keeper.js';
import { CheckpointRepository } from './repositories/checkpoint.repository.js';
import { CreditRepository } from './repositories/credit.repository.js';
import { JobRepository } from './repositories/job.repository.js';
import { MetricRepository } from './repositories/metric.repository.js';
import { RosterRepository } from './repositories/roster.repository.js';
import { RoundRepository } from './repositories/round.repository.js';
import { DEFAULT_JOB_SCHEDULER_SETTINGS, JOB_SCHEDULER_SETTINGS, JobScheduler, type JobSchedulerSettings } from './schedulers/job.scheduler.js';
import { JobCheckpointsService } from './services/job-checkpoints.service.js';
import { JobEventsService } from './services/job-events.service.js';
import { JobRosterService } from './services/job-roster.service.js';
import { WorkerNatsAccessService } from './services/worker-nats-access.service.js';
import { NatsRevocationService } from './services/nats-revocation.service.js';
import { JobSpecsService } from './services/job-specs.service.js';
import { JOB_KICK, JobService } from './services/job.service.js';
import { KEEPER_OPTIONS, KeeperService } from './services/keeper.service.js';
import { SchedulingService } from './services/scheduling.service.js';
import { SessionRegistry } from './services/session-registry.js';
import { CONFIG } from './tokens.js';
import { WorkersModule } from './workers.module.js';

/** Optional `jobs` section of the coordinator config (tests shorten periods). */
export interface JobsSettings {
  scheduler?: Partial<JobSchedulerSettings>;
  keeper?: KeeperOptions;
}

/** Jobs API, scheduling (leader only), rosters and the keeper. */
@Module({
  imports: [WorkersModule, DatasetsModule],
  controllers: [JobController],
  providers: [
    JobRepository,
    RosterRepository,
    RoundRepository,
    CheckpointRepository,
    MetricRepository,
    CreditRepository,
    JobEventsService,
    JobCheckpointsService,
    JobSpecsService,
    JobRosterService,
    WorkerNatsAccessService,
    NatsRevocationService,
    KeeperService,
    SchedulingService,
    JobScheduler,
    JobService,
    {
      provide: JOB_SCHEDULER_SETTINGS,
      useFactory: (config: { jobs?: JobsSettings }): JobSchedulerSettings => Object.freeze({ ...DEFAULT_JOB_SCHEDULER_SETTINGS, ...config.jobs?.scheduler }),
      inject: [CONFIG],
    },
    {
      provide: KEEPER_OPTIONS,
      useFactory: (config: { jobs?: JobsSettings }): KeeperOptions => Object.freeze({ ...config.jobs?.keeper }),
      inject: [CONFIG],
    },
    { provide: JOB_KICK, useFactory: (s: JobScheduler) => () => s.kick(), inject: [JobScheduler] },
  ],
  exports: [JobService, SchedulingService, KeeperService, JobRosterService, JobEventsService],
})
export class JobsModule {
  constructor(registry: SessionRegistry, scheduling: SchedulingService) {
    // Worker events of the whole cluster reach the keepers and the scheduler on the lock holder only.
    registry.setSchedulingProbe(() => scheduling.isLeader);
  }
}
