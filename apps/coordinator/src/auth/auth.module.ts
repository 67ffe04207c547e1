import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyController } from '../controllers/api-key.controller.js';
import { ApiKeyService } from '../services/api-key.service.js';
import { ApiKeyGuard } from './api-key.guard.js';

/** API keys and the global guard: every route needs a key unless @Public(). */
@Module({
  controllers: [ApiKeyController],
  providers: [ApiKeyService, { provide: APP_GUARD, useClass: ApiKeyGuard }],
  exports: [ApiKeyService],
})
export class AuthModule {}
