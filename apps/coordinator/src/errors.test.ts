import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  mapError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
} from './errors.js';
import { toGrpcError } from './grpc/grpc-status.js';
import { ErrorFilter } from './http/error.filter.js';
import { createLogger } from './logger.js';
import { HttpException } from '@nestjs/common';
import type { ArgumentsHost } from '@nestjs/common';

describe('the error table', () => {
  it.each([
    [new NotFoundError('x'), 404, status.NOT_FOUND],
    [new ConflictError('x'), 409, status.ALREADY_EXISTS],
    [new InvalidArgumentError('x'), 422, status.INVALID_ARGUMENT],
    [new UnauthenticatedError('x'), 401, status.UNAUTHENTICATED],
    [new PermissionDeniedError('x'), 403, status.PERMISSION_DENIED],
    [new FailedPreconditionError('x'), 409, status.FAILED_PRECONDITION],
    [new UnavailableError('x'), 503, status.UNAVAILABLE],
    [new Error('boom'), 500, status.INTERNAL],
    ['not even an error', 500, status.INTERNAL],
  ])('maps %s to HTTP %i and gRPC %i', (err, http, grpc) => {
    expect(mapError(err)).toEqual({ http, grpc });
    expect(toGrpcError(err).code).toBe(grpc);
  });

  it('names errors and keeps domain messages, hiding internal ones from gRPC callers', () => {
    expect(new NotFoundError('x').name).toBe('NotFoundError');
    expect(toGrpcError(new UnauthenticatedError('this join token has expired')).details).toBe('this join token has expired');
    expect(toGrpcError(new Error('password=hunter2')).details).toBe('internal error');
  });
});

describe('ErrorFilter', () => {
  function run(err: unknown): { code: number; body: unknown } {
    const out: { code: number; body: unknown } = { code: 0, body: undefined };
    const reply = {
      status(c: number) {
        out.code = c;
        return this;
      },
      send(b: unknown) {
        out.body = b;
        return this;
      },
    };
    const host = { switchToHttp: () => ({ getResponse: () => reply }) } as unknown as ArgumentsHost;
    new ErrorFilter(createLogger('silent')).catch(err, host);
    return out;
  }

  it('writes {statusCode, error, message} from the table', () => {
    expect(run(new PermissionDeniedError('viewer keys are read-only'))).toEqual({
      code: 403,
      body: { statusCode: 403, error: 'Forbidden', message: 'viewer keys are read-only' },
    });
    expect(run(new InvalidArgumentError('name: must not be empty')).body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity' });
  });

  it('keeps Nest and Fastify 4xx errors, and hides internal errors', () => {
    expect(run(new HttpException('Cannot GET /x', 404)).body).toEqual({ statusCode: 404, error: 'Not Found', message: 'Cannot GET /x' });
    expect(run(Object.assign(new Error('Body is not valid JSON'), { statusCode: 400 })).body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(run(new Error('secret detail'))).toEqual({ code: 500, body: { statusCode: 500, error: 'Internal Server Error', message: 'internal error' } });
  });
});
