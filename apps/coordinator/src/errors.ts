/**
 * Domain errors thrown by services, and the ONE table that maps them to an HTTP status and a
 * gRPC status code. Services know nothing of HTTP or gRPC; the exception filter
 * (http/error.filter.ts) and the gRPC helper (grpc/grpc-status.ts) both read `ERROR_TABLE`.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

export abstract class DomainError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The thing asked for does not exist (or is not visible to the caller). */
export class NotFoundError extends DomainError {
  override name = 'NotFoundError';
}
/** The request conflicts with existing state (duplicate name, …). */
export class ConflictError extends DomainError {
  override name = 'ConflictError';
}
/** A field is malformed; the message names it. */
export class InvalidArgumentError extends DomainError {
  override name = 'InvalidArgumentError';
}
/** No credentials, or credentials that do not check out. */
export class UnauthenticatedError extends DomainError {
  override name = 'UnauthenticatedError';
}
/** Valid credentials without the right to do this. */
export class PermissionDeniedError extends DomainError {
  override name = 'PermissionDeniedError';
}
/** The system is not in a state where this can be done (e.g. draining an offline worker). */
export class FailedPreconditionError extends DomainError {
  override name = 'FailedPreconditionError';
}
/** A dependency (database, NATS) is not reachable right now. */
export class UnavailableError extends DomainError {
  override name = 'UnavailableError';
}

export interface ErrorMapping {
  http: number;
  grpc: GrpcStatus;
}

/** The one translation table (STYLE.md). */
export const ERROR_TABLE: ReadonlyMap<abstract new (...args: never[]) => DomainError, ErrorMapping> = new Map<
  abstract new (...args: never[]) => DomainError,
  ErrorMapping
>([
  [NotFoundError, { http: 404, grpc: GrpcStatus.NOT_FOUND }],
  [ConflictError, { http: 409, grpc: GrpcStatus.ALREADY_EXISTS }],
  [InvalidArgumentError, { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT }],
  [UnauthenticatedError, { http: 401, grpc: GrpcStatus.UNAUTHENTICATED }],
  [PermissionDeniedError, { http: 403, grpc: GrpcStatus.PERMISSION_DENIED }],
  [FailedPreconditionError, { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION }],
  [UnavailableError, { http: 503, grpc: GrpcStatus.UNAVAILABLE }],
]);

const INTERNAL: ErrorMapping = { http: 500, grpc: GrpcStatus.INTERNAL };

/** The mapping for `err`; INTERNAL (500) for anything that is not a domain error. */
export function mapError(err: unknown): ErrorMapping {
  if (err instanceof DomainError) {
    for (const [cls, mapping] of ERROR_TABLE) if (err instanceof cls) return mapping;
  }
  return INTERNAL;
}
