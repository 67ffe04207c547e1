// Original file: gradpool/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A job-level failure the worker cannot recover from by itself.
 */
export interface JobFault {
  'jobId'?: (string);
  'epoch'?: (number);
  'round'?: (number | string | Long);
  'kind'?: (string);
  'message'?: (string);
  /**
   * Worker id the fault is about (e.g. a missing shard owner), empty if none.
   */
  'subjectWorkerId'?: (string);
}

/**
 * A job-level failure the worker cannot recover from by itself.
 */
export interface JobFault__Output {
  'jobId': (string);
  'epoch': (number);
  'round': (string);
  'kind': (string);
  'message': (string);
  /**
   * Worker id the fault is about (e.g. a missing shard owner), empty if none.
   */
  'subjectWorkerId': (string);
}
