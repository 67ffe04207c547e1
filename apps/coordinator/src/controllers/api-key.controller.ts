import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Roles } from '../auth/auth.decorators.js';
import { API_KEY_ROLES } from '../auth/principal.js';
import { openApiSchema, ZodValidationPipe } from '../http/zod-validation.pipe.js';
import { ApiKeyService } from '../services/api-key.service.js';

export const CreateApiKeyBody = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters'),
  role: z.enum(API_KEY_ROLES, { error: `must be one of ${API_KEY_ROLES.join(', ')}` }),
  groupId: z.uuid({ error: 'must be a group id (uuid)' }).optional(),
});

@ApiTags('api-keys')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/api-keys')
export class ApiKeyController {
  constructor(private readonly keys: ApiKeyService) {}

  /** Creates a key. Its plaintext (`key`) is in this response only. */
  @Post()
  @ApiBody({ schema: openApiSchema(CreateApiKeyBody) })
  async create(@Body(new ZodValidationPipe(CreateApiKeyBody)) body: z.output<typeof CreateApiKeyBody>) {
    const { key, view } = await this.keys.create(body);
    return { ...view, key };
  }

  @Get()
  list() {
    return this.keys.list();
  }

  @Delete(':id')
  revoke(@Param('id') id: string) {
    return this.keys.revoke(id);
  }
}
