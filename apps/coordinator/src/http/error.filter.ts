import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { DomainError, mapError } from '../errors.js';
import type { Logger } from '../logger.js';
import { LOGGER } from '../tokens.js';

/** Error body of every failed admin API call. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

/** Turns anything thrown in a request into `{statusCode, error, message}` (errors.ts table). */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly log: Logger;

  constructor(@Inject(LOGGER) logger: Logger) {
    this.log = logger.child({ component: 'http' });
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { statusCode, message } = this.describe(exception);
    const body: ErrorBody = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
    void reply.status(statusCode).send(body);
  }

  private describe(e: unknown): { statusCode: number; message: string } {
    if (e instanceof DomainError) return { statusCode: mapError(e).http, message: e.message };
    if (e instanceof HttpException) {
      const r = e.getResponse();
      const m = typeof r === 'string' ? r : (r as { message?: unknown }).message;
      return { statusCode: e.getStatus(), message: Array.isArray(m) ? m.join('; ') : String(m ?? e.message) };
    }
    // Fastify's own errors (bad JSON, wrong content type, body too large) carry a 4xx statusCode.
    const sc = (e as { statusCode?: unknown } | null)?.statusCode;
    if (typeof sc === 'number' && sc >= 400 && sc < 500) return { statusCode: sc, message: (e as Error).message };
    this.log.error({ err: e }, 'unhandled error in a request');
    return { statusCode: 500, message: 'internal error' };
  }
}
