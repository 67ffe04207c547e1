import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { AuthModule } from './auth/auth.module.js';
import { CoreModule, type CoordinatorRuntime } from './core.module.js';
import { DashboardModule } from './dashboard.module.js';
import { DatasetsModule } from './datasets.module.js';
import { GroupsModule } from './groups.module.js';
import { HealthModule } from './health.module.js';
import { JobsModule } from './jobs.module.js';
import { WorkersModule } from './workers.module.js';

/**
 * The coordinator's feature modules. Add a capability by appending its module here; it can
 * inject CONFIG, DATABASE, NATS, LOGGER, CoordinatorMetrics and the shared repositories
 * (CoreModule is global), and WorkersModule's exports (SessionRegistry, WorkerService, …) by
 * importing WorkersModule.
 */
export const FEATURE_MODULES: Type[] = [HealthModule, AuthModule, GroupsModule, WorkersModule, DatasetsModule, JobsModule, DashboardModule];

@Module({})
export class AppModule {
  static forRoot(runtime: CoordinatorRuntime, extraModules: Type[] = []): DynamicModule {
    return { module: AppModule, imports: [CoreModule.forRoot(runtime), ...FEATURE_MODULES, ...extraModules] };
  }
}
