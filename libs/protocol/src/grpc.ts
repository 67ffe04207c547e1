import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from './gen/worker.js';

/** Folder holding `gradpool/v1/*.proto` (the repository's `protos/`). */
export const PROTO_ROOT = fileURLToPath(new URL('../../../protos/', import.meta.url));

/**
 * Loader options. They must match the flags of scripts/gen.js, so that runtime objects have
 * the shapes of the generated types (camelCase fields, longs as strings, enums as strings,
 * defaults filled, a virtual field naming the set oneof).
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let cached: ProtoGrpcType | undefined;

/** Loads the gRPC package definition of `protos/gradpool/v1/worker.proto` (once). */
export function loadWorkerProto(): ProtoGrpcType {
  if (!cached) {
    const def = protoLoader.loadSync('gradpool/v1/worker.proto', LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return cached;
}

/** Call metadata keys that authenticate a worker's session stream. */
export const SESSION_METADATA = {
  workerId: 'x-gradpool-worker-id',
  secret: 'x-gradpool-session-secret',
} as const;

/** Channel options shared by the coordinator's server and the worker's client. */
export const GRPC_CHANNEL_OPTIONS = {
  // Control-plane messages are small; anything near this limit is a bug or an attack.
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.http2.max_pings_without_data': 0,
} as const;
