import { Metadata, status, type ServerErrorResponse, type StatusObject } from '@grpc/grpc-js';
import { DomainError, mapError } from '../errors.js';

/** A domain error as a gRPC status (the table in errors.ts); internals are not leaked. */
export function toGrpcError(err: unknown): ServerErrorResponse & Partial<StatusObject> {
  const { grpc: code } = mapError(err);
  const details = err instanceof DomainError ? err.message : 'internal error';
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

export { status as GrpcStatus };
