import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiTags } from '@nestjs/swagger';
import { DATASET_FORMATS } from '@gradpool/datasets';
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { Roles } from '../auth/auth.decorators.js';
import { InvalidArgumentError } from '../errors.js';
import { openApiSchema, ZodValidationPipe } from '../http/zod-validation.pipe.js';
import { DatasetUploadService } from '../services/dataset-upload.service.js';
import { DatasetService } from '../services/dataset.service.js';

const name = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(64, 'at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, underscore and dash, starting with a letter or digit');

const importOptions = {
  normalise: z.enum(['none', 'scale', 'standardise']).optional(),
  validationFraction: z.number().min(0, 'must be ≥ 0').max(0.9, 'must be ≤ 0.9').optional(),
  seed: z.union([z.number().int('must be an integer'), z.string().max(100)]).optional(),
  shardBytes: z.number().int().min(4096, 'at least 4096').max(64 * 1024 * 1024, 'at most 64 MiB').optional(),
  classes: z.array(z.string().min(1)).min(1).max(10_000).optional(),
};

/** Import from staged uploads (`POST /v1/datasets/uploads`). */
export const ImportFilesBody = z.strictObject({
  name,
  format: z.enum(DATASET_FORMATS),
  /** Upload ids: idx [images, labels], npy [features, labels], csv [table]. */
  files: z.array(z.uuid('must be an upload id')).min(1).max(2),
  /** A separate test split, same layout as `files`. */
  testFiles: z.array(z.uuid('must be an upload id')).min(1).max(2).optional(),
  testFraction: z.number().min(0).max(0.9).optional(),
  labelColumn: z.string().min(1).max(200).optional(),
  ...importOptions,
});

/** Import a built-in dataset. */
export const ImportBuiltinBody = z.strictObject({
  builtin: z.literal('mnist', { error: 'the only built-in dataset is "mnist"' }),
  name: name.optional(),
  ...importOptions,
});

@ApiTags('datasets')
@ApiBearerAuth()
@Controller('v1/datasets')
export class DatasetController {
  constructor(
    private readonly datasets: DatasetService,
    private readonly uploads: DatasetUploadService,
  ) {}

  /** Streams one file (Content-Type: application/octet-stream) to the coordinator's disk. */
  @Post('uploads')
  @Roles('admin')
  @ApiConsumes('application/octet-stream')
  upload(@Req() req: FastifyRequest, @Query('name') fileName?: string) {
    const body = req.body;
    if (!(body instanceof Readable)) throw new InvalidArgumentError('send the file as the body with Content-Type: application/octet-stream');
    return this.uploads.receive(body, fileName?.slice(0, 200) || 'upload');
  }

  /** Imports a dataset from uploads, or a built-in one (`{"builtin": "mnist"}`); answers when it is ready. */
  @Post()
  @Roles('admin')
  @ApiBody({ schema: { oneOf: [openApiSchema(ImportFilesBody), openApiSchema(ImportBuiltinBody)] } })
  async create(@Body() raw: unknown) {
    if (raw && typeof raw === 'object' && 'builtin' in raw) {
      const b = new ZodValidationPipe(ImportBuiltinBody).transform(raw);
      return this.datasets.importBuiltin({ ...b, name: b.name ?? b.builtin });
    }
    const b = new ZodValidationPipe(ImportFilesBody).transform(raw);
    const files = this.uploads.claim(b.files, 'files');
    const testFiles = b.testFiles ? this.uploads.claim(b.testFiles, 'testFiles') : undefined;
    try {
      return await this.datasets.importFiles({ ...b, files, testFiles });
    } finally {
      await this.uploads.release([...files, ...(testFiles ?? [])]);
    }
  }

  @Get()
  list() {
    return this.datasets.list();
  }

  /** Splits, shapes, classes, counts, the shard list (sha256 keys in `shardBucket`) and normalisation. */
  @Get(':id')
  get(@Param('id') id: string) {
    return this.datasets.get(id);
  }

  /**
   * Checks that the object store holds every shard of the dataset: `{ total, missing: [sha256…] }`.
   * Postgres and NATS can part ways (NATS storage lost, another NATS); such a dataset must be
   * deleted and imported again.
   */
  @Get(':id/objects')
  async objects(@Param('id') id: string) {
    await this.datasets.get(id);
    return this.datasets.missingObjects(id);
  }

  /** Deletes the dataset and its shards (those no other dataset shares); 409 while a job uses it. */
  @Delete(':id')
  @Roles('admin')
  @HttpCode(204)
  async delete(@Param('id') id: string) {
    await this.datasets.delete(id);
  }
}
