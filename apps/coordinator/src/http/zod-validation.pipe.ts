import { Injectable, type PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';

/** "field.path: message; …" naming each bad field. */
export function describeZodError(err: z.ZodError, root = 'body'): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : root}: ${i.message}`).join('; ');
}

/** Validates (and transforms) a body, query or param with a zod schema; 422 naming the field. */
@Injectable()
export class ZodValidationPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(
    private readonly schema: S,
    private readonly root = 'body',
  ) {}

  transform(value: unknown): z.output<S> {
    const r = this.schema.safeParse(value ?? {});
    if (!r.success) throw new InvalidArgumentError(describeZodError(r.error, this.root));
    return r.data;
  }
}

/** The OpenAPI 3.0 schema of a zod schema's input, for @ApiBody / @ApiQuery. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { $schema, ...rest } = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}
