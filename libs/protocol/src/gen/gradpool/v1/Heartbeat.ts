// Original file: gradpool/v1/worker.proto

import type { WorkerState as _gradpool_v1_WorkerState, WorkerState__Output as _gradpool_v1_WorkerState__Output } from '../../gradpool/v1/WorkerState.js';
import type { Long } from '@grpc/proto-loader';

export interface Heartbeat {
  'state'?: (_gradpool_v1_WorkerState);
  /**
   * Job the worker is working on, empty when idle.
   */
  'jobId'?: (string);
  'round'?: (number | string | Long);
  /**
   * Free-form one-line status for the dashboard.
   */
  'status'?: (string);
  /**
   * Worker's wall clock, ms since the epoch (for skew and latency estimates).
   */
  'sentAtMs'?: (number | string | Long);
}

export interface Heartbeat__Output {
  'state': (_gradpool_v1_WorkerState__Output);
  /**
   * Job the worker is working on, empty when idle.
   */
  'jobId': (string);
  'round': (string);
  /**
   * Free-form one-line status for the dashboard.
   */
  'status': (string);
  /**
   * Worker's wall clock, ms since the epoch (for skew and latency estimates).
   */
  'sentAtMs': (string);
}
