import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators.js';
import { CoordinatorMetrics } from '../metrics.js';
import { WorkerService } from '../services/worker.service.js';

@ApiExcludeController()
@Public()
@Controller()
export class MetricsController {
  constructor(
    private readonly metrics: CoordinatorMetrics,
    private readonly workers: WorkerService,
  ) {}

  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    await this.workers.refreshGauges();
    return this.metrics.registry.metrics();
  }
}
