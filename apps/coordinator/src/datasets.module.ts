import { Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { DatasetController } from './controllers/dataset.controller.js';
import { DatasetRepository } from './repositories/dataset.repository.js';
import { ShardRepository } from './repositories/shard.repository.js';
import { CONFIG } from './tokens.js';
import { DatasetUploadService } from './services/dataset-upload.service.js';
import { DATASET_SETTINGS, DatasetService, DEFAULT_DATASET_SETTINGS, type DatasetSettings } from './services/dataset.service.js';

const OCTET_STREAM = 'application/octet-stream';

/**
 * Dataset import, listing and deletion (REST), and the shard metadata the jobs module deals
 * from (DatasetService, ShardRepository are exported).
 */
@Module({
  controllers: [DatasetController],
  providers: [
    DatasetRepository,
    ShardRepository,
    DatasetService,
    DatasetUploadService,
    {
      provide: DATASET_SETTINGS,
      // CoordinatorConfig may carry `datasets` (partial settings); defaults otherwise.
      useFactory: (config: { datasets?: Partial<DatasetSettings> }): DatasetSettings =>
        Object.freeze({ ...DEFAULT_DATASET_SETTINGS, ...config.datasets }),
      inject: [CONFIG],
    },
  ],
  exports: [DatasetService, DatasetRepository, ShardRepository],
})
export class DatasetsModule implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** Upload bodies reach the controller as the raw stream (no buffering, no body limit). */
  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (fastify && !fastify.hasContentTypeParser(OCTET_STREAM)) {
      fastify.addContentTypeParser(OCTET_STREAM, (_req, payload, done) => done(null, payload));
    }
  }
}
