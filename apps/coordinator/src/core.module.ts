import { Global, Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { DbHandle } from '@gradpool/db';
import type { NatsConnection } from 'nats';
import type { CoordinatorConfig } from './config.js';
import { ErrorFilter } from './http/error.filter.js';
import type { Logger } from './logger.js';
import { CoordinatorMetrics } from './metrics.js';
import { ApiKeyRepository } from './repositories/api-key.repository.js';
import { EventRepository } from './repositories/event.repository.js';
import { ExclusionRepository } from './repositories/exclusion.repository.js';
import { GroupRepository } from './repositories/group.repository.js';
import { JoinTokenRepository } from './repositories/join-token.repository.js';
import { WorkerRepository } from './repositories/worker.repository.js';
import { CONFIG, DATABASE, LOGGER, NATS } from './tokens.js';

/** What startCoordinator creates before Nest: config, database pool, NATS connection, root logger. */
export interface CoordinatorRuntime {
  config: CoordinatorConfig;
  db: DbHandle;
  nats: NatsConnection;
  logger: Logger;
}

/** Repositories any feature module may inject (stateless; drizzle queries only). */
export const REPOSITORIES = [ApiKeyRepository, EventRepository, ExclusionRepository, GroupRepository, JoinTokenRepository, WorkerRepository];

/**
 * Global providers: CONFIG, DATABASE (DbHandle), NATS (NatsConnection), LOGGER (pino), the
 * metrics registry, the shared repositories, and the error filter.
 */
@Global()
@Module({})
export class CoreModule {
  static forRoot(runtime: CoordinatorRuntime): DynamicModule {
    const values = [
      { provide: CONFIG, useValue: runtime.config },
      { provide: DATABASE, useValue: runtime.db },
      { provide: NATS, useValue: runtime.nats },
      { provide: LOGGER, useValue: runtime.logger },
    ];
    return {
      module: CoreModule,
      providers: [...values, CoordinatorMetrics, ...REPOSITORIES, { provide: APP_FILTER, useClass: ErrorFilter }],
      exports: [...values.map((v) => v.provide), CoordinatorMetrics, ...REPOSITORIES],
    };
  }
}
