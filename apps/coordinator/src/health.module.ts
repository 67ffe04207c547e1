import { Module } from '@nestjs/common';
import { HealthController } from './controllers/health.controller.js';
import { MetricsController } from './controllers/metrics.controller.js';
import { HealthService } from './services/health.service.js';

@Module({ controllers: [HealthController, MetricsController], providers: [HealthService], exports: [HealthService] })
export class HealthModule {}
