import { Module } from '@nestjs/common';
import { HealthController } from './controllers/health.controller.js';
import { MetricsController } from './controllers/metrics.controller.js';
import { HealthService } from './services/health.service.js';
import { WorkersModule } from './workers.module.js';

/** /healthz, /readyz and /metrics (no API key). */
@Module({ imports: [WorkersModule], controllers: [HealthController, MetricsController], providers: [HealthService], exports: [HealthService] })
export class HealthModule {}
