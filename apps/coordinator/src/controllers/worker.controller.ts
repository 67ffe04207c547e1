import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiQuery, ApiTags } from '@nestjs/swagger';
import { workerStatus } from '@gradpool/db';
import { z } from 'zod';
import { CurrentPrincipal, Roles } from '../auth/auth.decorators.js';
import { assertGroupAccess, type Principal } from '../auth/principal.js';
import { ZodValidationPipe } from '../http/zod-validation.pipe.js';
import { WorkerService } from '../services/worker.service.js';

export const ListWorkersQuery = z.object({
  group: z.uuid({ error: 'must be a group id (uuid)' }).optional(),
  status: z.enum(workerStatus.enumValues, { error: `must be one of ${workerStatus.enumValues.join(', ')}` }).optional(),
});

@ApiTags('workers')
@ApiBearerAuth()
@Controller('v1/workers')
export class WorkerController {
  constructor(private readonly workers: WorkerService) {}

  /** Workers with status, capabilities and last seen; a group admin sees its own group's. */
  @Get()
  @ApiQuery({ name: 'group', required: false, description: 'group id' })
  @ApiQuery({ name: 'status', required: false, enum: workerStatus.enumValues })
  list(@CurrentPrincipal() p: Principal, @Query(new ZodValidationPipe(ListWorkersQuery, 'query')) q: z.output<typeof ListWorkersQuery>) {
    let groupId = q.group;
    if (p.role === 'group-admin') {
      if (groupId) assertGroupAccess(p, groupId, 'read');
      groupId = p.groupId ?? undefined;
    }
    return this.workers.list({ groupId, status: q.status });
  }

  @Get(':id')
  async get(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    const w = await this.workers.get(id);
    assertGroupAccess(p, w.groupId, 'read');
    return w;
  }

  /** Asks the worker to drain (it finishes, says goodbye and leaves). 409 if it is not online. */
  @Post(':id/drain')
  @HttpCode(202)
  @Roles('admin', 'group-admin')
  async drain(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    const w = await this.workers.require(id);
    assertGroupAccess(p, w.groupId, 'write');
    return this.workers.requestDrain(id);
  }
}
