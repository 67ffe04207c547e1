// Original file: gradpool/v1/worker.proto

import type { NatsAccess as _gradpool_v1_NatsAccess, NatsAccess__Output as _gradpool_v1_NatsAccess__Output } from '../../gradpool/v1/NatsAccess.js';
import type { Long } from '@grpc/proto-loader';

/**
 * A job handed to the worker. The spec is JSON validated by the coordinator at submission;
 * the worker re-validates it before use.
 */
export interface Assignment {
  'jobId'?: (string);
  'jobName'?: (string);
  /**
   * JSON: model, optimizer, schedule, loss, codec, batch, deadlines (jobs issue).
   */
  'specJson'?: (string);
  /**
   * Object-store bucket of the job's checkpoints and the latest checkpoint's key.
   */
  'checkpointBucket'?: (string);
  'checkpointKey'?: (string);
  'checkpointRound'?: (number | string | Long);
  /**
   * Data-plane access for this job: with per-worker NATS users, credentials limited to this job's
   * subjects and buckets (libs/nats-auth). Absent: the registration's NatsAccess serves.
   */
  'nats'?: (_gradpool_v1_NatsAccess | null);
}

/**
 * A job handed to the worker. The spec is JSON validated by the coordinator at submission;
 * the worker re-validates it before use.
 */
export interface Assignment__Output {
  'jobId': (string);
  'jobName': (string);
  /**
   * JSON: model, optimizer, schedule, loss, codec, batch, deadlines (jobs issue).
   */
  'specJson': (string);
  /**
   * Object-store bucket of the job's checkpoints and the latest checkpoint's key.
   */
  'checkpointBucket': (string);
  'checkpointKey': (string);
  'checkpointRound': (string);
  /**
   * Data-plane access for this job: with per-worker NATS users, credentials limited to this job's
   * subjects and buckets (libs/nats-auth). Absent: the registration's NatsAccess serves.
   */
  'nats': (_gradpool_v1_NatsAccess__Output | null);
}
