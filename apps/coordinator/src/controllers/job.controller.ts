import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Sse, type MessageEvent } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiTags } from '@nestjs/swagger';
import { JobSpecSchema } from '@gradpool/protocol';
import { Observable } from 'rxjs';
import { z } from 'zod';
import { CurrentPrincipal, Roles } from '../auth/auth.decorators.js';
import type { Principal } from '../auth/principal.js';
import { openApiSchema, ZodValidationPipe } from '../http/zod-validation.pipe.js';
import { JobEventsService, type JobEvent } from '../services/job-events.service.js';
import { JobService } from '../services/job.service.js';

const STATUSES = ['queued', 'running', 'paused', 'completed', 'failed', 'cancelled'] as const;
const ListQuery = z.strictObject({
  status: z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(STATUSES)))
    .optional(),
});
const RoundQuery = z.strictObject({ round: z.coerce.number().int().min(0).optional() });
const FromQuery = z.strictObject({ from: z.coerce.number().int().min(0).optional() });

@ApiTags('jobs')
@ApiBearerAuth()
@Controller('v1/jobs')
export class JobController {
  constructor(
    private readonly jobs: JobService,
    private readonly events: JobEventsService,
  ) {}

  /** Submits a job (422 naming the field for a bad spec; nothing is written then). */
  @Post()
  @Roles('admin', 'group-admin')
  @ApiBody({ schema: openApiSchema(JobSpecSchema) })
  submit(@CurrentPrincipal() p: Principal, @Body() body: unknown) {
    return this.jobs.submit(p, body);
  }

  @Get()
  list(@CurrentPrincipal() p: Principal, @Query(new ZodValidationPipe(ListQuery, 'query')) q: z.output<typeof ListQuery>) {
    return this.jobs.list(p, q.status);
  }

  /** Status and reason, round, epoch, samples, the roster (share, speed), last metrics, ETA, credit. */
  @Get(':id')
  get(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return this.jobs.get(p, id);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @Roles('admin', 'group-admin')
  pause(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return this.jobs.pause(p, id);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @Roles('admin', 'group-admin')
  resume(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return this.jobs.resume(p, id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @Roles('admin', 'group-admin')
  cancel(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return this.jobs.cancel(p, id);
  }

  /** Workers kept out of the job now: `[{workerId, workerName, kind, reason, since, until}]` (`until` null: for good). */
  @Get(':id/exclusions')
  exclusions(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return this.jobs.exclusions(p, id);
  }

  /** Lets a worker kept out of the job back in at once (a ban too); 404 when it is not kept out. Returns what was lifted. */
  @Delete(':id/exclusions/:workerId')
  @Roles('admin', 'group-admin')
  readmit(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('workerId') workerId: string) {
    return this.jobs.readmit(p, id, workerId);
  }

  /** Metrics by round: `[{round, loss, samples_per_s, bytes_per_round, val_accuracy, …}]`. */
  @Get(':id/metrics')
  metrics(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Query(new ZodValidationPipe(FromQuery, 'query')) q: z.output<typeof FromQuery>) {
    return this.jobs.metricsByRound(p, id, q.from);
  }

  @Get(':id/checkpoints')
  checkpoints(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return this.jobs.checkpoints(p, id);
  }

  /**
   * The exported TensorFlow.js model (newest checkpoint, or the newest at or before `round`):
   * JSON `{format, modelTopology, weightSpecs, weightData (base64), round}`; load with
   * `tf.loadLayersModel(tf.io.fromMemory({modelTopology, weightSpecs, weightData: bytes.buffer}))`.
   */
  @Get(':id/model')
  model(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Query(new ZodValidationPipe(RoundQuery, 'query')) q: z.output<typeof RoundQuery>) {
    return this.jobs.model(p, id, q.round);
  }

  /** Server-sent events: the last 100 stored events, then live ones (state, roster, round, checkpoint, fault, …). */
  @Sse(':id/events')
  async stream(@CurrentPrincipal() p: Principal, @Param('id') id: string): Promise<Observable<MessageEvent>> {
    await this.jobs.assertReadable(p, id);
    const backlog = await this.jobs.recentEvents(id);
    return new Observable<MessageEvent>((sub) => {
      const send = (e: JobEvent) => sub.next({ type: e.type, data: e });
      for (const e of backlog) send(e as JobEvent);
      return this.events.subscribe(id, send);
    });
  }
}
