// Original file: gradpool/v1/worker.proto

import type { NatsAccess as _gradpool_v1_NatsAccess, NatsAccess__Output as _gradpool_v1_NatsAccess__Output } from '../../gradpool/v1/NatsAccess.js';

export interface RegisterResponse {
  'workerId'?: (string);
  'sessionSecret'?: (string);
  'groupId'?: (string);
  'nats'?: (_gradpool_v1_NatsAccess | null);
  'heartbeatIntervalMs'?: (number);
  /**
   * A worker that reconnects within this many milliseconds of its last heartbeat keeps its
   * identity and its place in running jobs.
   */
  'leaseMs'?: (number);
}

export interface RegisterResponse__Output {
  'workerId': (string);
  'sessionSecret': (string);
  'groupId': (string);
  'nats': (_gradpool_v1_NatsAccess__Output | null);
  'heartbeatIntervalMs': (number);
  /**
   * A worker that reconnects within this many milliseconds of its last heartbeat keeps its
   * identity and its place in running jobs.
   */
  'leaseMs': (number);
}
