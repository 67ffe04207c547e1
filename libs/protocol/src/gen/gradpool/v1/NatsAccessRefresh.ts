// Original file: gradpool/v1/worker.proto

import type { NatsAccess as _gradpool_v1_NatsAccess, NatsAccess__Output as _gradpool_v1_NatsAccess__Output } from '../../gradpool/v1/NatsAccess.js';

/**
 * Fresh data-plane credentials for a job the worker is assigned (per-worker NATS users lapse:
 * libs/nats-auth). The worker's connection for that job uses them at its next (re)connect.
 */
export interface NatsAccessRefresh {
  'jobId'?: (string);
  'nats'?: (_gradpool_v1_NatsAccess | null);
}

/**
 * Fresh data-plane credentials for a job the worker is assigned (per-worker NATS users lapse:
 * libs/nats-auth). The worker's connection for that job uses them at its next (re)connect.
 */
export interface NatsAccessRefresh__Output {
  'jobId': (string);
  'nats': (_gradpool_v1_NatsAccess__Output | null);
}
